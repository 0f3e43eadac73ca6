//! What `calscan migrate --check` finds in a database and what migrating it
//! would do, and the reasons calscan refuses one: the same judgement for
//! `migrate --check`, `migrate` and `serve`, made before anything is written.
//!
//! What the migrations create and add is read from the migrations
//! themselves, so this report cannot drift from them.

use std::collections::HashMap;
use std::fmt;

use sqlx::migrate::Migrator;

use super::customers::{Column, CustomerLayout};

/// The columns of the PHP scanner's tables, as its DDL made them.
pub const ORIGINAL_SCAN_PROGRESS: [&str; 12] = [
    "id",
    "scan_id",
    "status",
    "progress",
    "current_step",
    "events_scanned",
    "emails_found",
    "new_count",
    "existing_count",
    "error_message",
    "started_at",
    "completed_at",
];
pub const ORIGINAL_SCAN_LOGS: [&str; 4] = ["id", "scan_id", "message", "created_at"];

/// What one pending migration does to tables, read from its statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Tables it creates, and whether only if they do not exist yet.
    pub creates: Vec<(String, bool)>,
    /// Columns it adds, by table.
    pub adds: Vec<(String, String)>,
}

impl Plan {
    /// Reads `CREATE TABLE [IF NOT EXISTS] t` and `ALTER TABLE t … ADD
    /// COLUMN c` from SQL text.
    pub fn of_sql(sql: &str) -> Self {
        let text: String = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or("").to_owned() + "\n")
            .collect();
        let mut plan = Self::default();
        for statement in text.split(';') {
            let words: Vec<&str> = statement
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
            let is = |i: usize, word: &str| upper.get(i).is_some_and(|w| w == word);
            if is(0, "CREATE") && is(1, "TABLE") {
                let guarded = is(2, "IF") && is(3, "NOT") && is(4, "EXISTS");
                if let Some(name) = words.get(if guarded { 5 } else { 2 }) {
                    plan.creates.push(((*name).to_owned(), guarded));
                }
            } else if is(0, "ALTER") && is(1, "TABLE") {
                let Some(table) = words.get(2) else { continue };
                for i in 3..words.len() {
                    if is(i, "ADD")
                        && is(i + 1, "COLUMN")
                        && let Some(column) = words.get(i + 2)
                    {
                        plan.adds.push(((*table).to_owned(), (*column).to_owned()));
                    }
                }
            }
        }
        plan
    }
}

/// The migrations `migrator` has that `applied` lacks, as version and
/// description, with what they do.
pub fn pending(migrator: &Migrator, applied: &[i64]) -> Vec<(i64, String, Plan)> {
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| {
            (
                m.version,
                m.description.to_string(),
                Plan::of_sql(m.sql.as_str()),
            )
        })
        .collect()
}

/// The customer table as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFindings {
    pub layout: CustomerLayout,
    pub rows: i64,
    /// Rows whose normalized email another row has too.
    pub duplicates: i64,
}

/// What a database holds and what migrating it would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub backend: &'static str,
    pub applied: usize,
    /// Version and description of each migration still to run.
    pub pending: Vec<(i64, String)>,
    pub create: Vec<String>,
    /// Tables that exist and are taken over as they are: the PHP scanner's,
    /// the school's customers.
    pub adopt: Vec<String>,
    /// Existing tables and the columns migrating adds to them.
    pub upgrade: Vec<(String, Vec<String>)>,
    /// The customer table, when it exists already.
    pub customers: Option<CustomerFindings>,
    /// The customer table calscan creates, when there is none.
    pub customers_created: Option<String>,
    /// Why calscan cannot use this database, each with what to do.
    pub problems: Vec<String>,
}

impl Report {
    pub fn can_proceed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Judges `tables` (what exists, with its columns when calscan needs
    /// them) against `pending` migrations.
    pub fn judge(
        &mut self,
        pending: &[(i64, String, Plan)],
        tables: &[String],
        columns: &HashMap<String, Vec<Column>>,
    ) {
        let columns_of = |t: &str| columns.get(t).cloned().unwrap_or_default();
        let exists = |t: &str| tables.iter().any(|have| have == t);
        self.pending = pending.iter().map(|(v, d, _)| (*v, d.clone())).collect();
        for (_, _, plan) in pending {
            for (table, guarded) in &plan.creates {
                if !exists(table) {
                    self.create.push(table.clone());
                } else if *guarded {
                    self.adopt.push(table.clone());
                } else {
                    self.problems.push(foreign_table(self.backend, table));
                }
            }
            for (table, column) in &plan.adds {
                let present = columns_of(table).iter().any(|c| c.name == *column);
                if !exists(table) || present {
                    continue;
                }
                match self.upgrade.iter_mut().find(|(t, _)| t == table) {
                    Some((_, columns)) => columns.push(column.clone()),
                    None => self.upgrade.push((table.clone(), vec![column.clone()])),
                }
            }
        }
        for (table, expected) in [
            ("scan_progress", &ORIGINAL_SCAN_PROGRESS[..]),
            ("scan_logs", &ORIGINAL_SCAN_LOGS[..]),
        ] {
            if !self.adopt.iter().any(|t| t == table) {
                continue;
            }
            let have = columns_of(table);
            let missing: Vec<&str> = expected
                .iter()
                .filter(|e| !have.iter().any(|c| c.name.eq_ignore_ascii_case(e)))
                .copied()
                .collect();
            // calscan's columns there already, though its migrations never ran.
            let partial = pending
                .iter()
                .flat_map(|(_, _, p)| &p.adds)
                .any(|(t, c)| t == table && have.iter().any(|h| h.name == *c));
            if !missing.is_empty() || partial {
                self.problems.push(format!(
                    "`{table}` is neither the PHP scanner's nor calscan's (its columns: {}{}): \
                     calscan cannot upgrade it. Rename it, or point DATABASE_URL at another \
                     database",
                    have.iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; missing {}", missing.join(", "))
                    }
                ));
            }
        }
    }
}

/// Why a table calscan would create is in the way.
fn foreign_table(backend: &str, table: &str) -> String {
    if (table == "scan_progress" || table == "scan_logs") && backend != "mysql" {
        format!(
            "`{table}` exists already: calscan takes over the PHP scanner's tables on \
             MySQL/MariaDB, where that scanner runs; on {backend} it creates its own. Point \
             DATABASE_URL at a database without them"
        )
    } else {
        format!(
            "`{table}` exists already and calscan's migrations did not create it: calscan \
             needs that name for a table of its own. Rename that table, or point DATABASE_URL \
             at another database"
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "database: {}, {} migrations applied, {} pending",
            self.backend,
            self.applied,
            self.pending.len()
        )?;
        for (version, description) in &self.pending {
            writeln!(f, "  would apply {version:04} {description}")?;
        }
        let list = |items: &[String]| items.join(", ");
        if !self.create.is_empty() {
            writeln!(f, "tables to create: {}", list(&self.create))?;
        }
        if !self.adopt.is_empty() {
            writeln!(f, "tables kept as they are and used: {}", list(&self.adopt))?;
        }
        for (table, columns) in &self.upgrade {
            writeln!(f, "table to upgrade: {table}, adding {}", list(columns))?;
        }
        if let Some(c) = &self.customers {
            writeln!(
                f,
                "customers: table {}, email column {}, name columns {}, {} rows, {} with an \
                 email another row has too",
                c.layout.table, c.layout.email, c.layout.names, c.rows, c.duplicates
            )?;
        }
        if let Some(table) = &self.customers_created {
            writeln!(
                f,
                "customers: table {table}, created by calscan (email, name)"
            )?;
        }
        if self.problems.is_empty() && self.pending.is_empty() {
            writeln!(f, "nothing to do: the database is up to date")?;
        }
        for problem in &self.problems {
            writeln!(f, "cannot migrate: {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_read_what_statements_create_and_add() {
        let plan = Plan::of_sql(
            "-- CREATE TABLE ignored\nCREATE TABLE IF NOT EXISTS scan_progress (id INT);\n\
             CREATE TABLE bookings (x INT);\n\
             ALTER TABLE scan_logs MODIFY COLUMN created_at DATETIME(6),\n\
             ADD COLUMN event_id BIGINT, ADD COLUMN message_en TEXT, ADD KEY k (scan_id);",
        );
        assert_eq!(
            plan.creates,
            [
                ("scan_progress".to_owned(), true),
                ("bookings".to_owned(), false)
            ]
        );
        assert_eq!(
            plan.adds,
            [
                ("scan_logs".to_owned(), "event_id".to_owned()),
                ("scan_logs".to_owned(), "message_en".to_owned())
            ]
        );
    }
}
