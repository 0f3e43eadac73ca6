//! The PostgreSQL store: native timestamps and booleans, the same logical
//! schema and the same behaviour as SQLite (the same tests run on both).
//! Several calscan processes may share one database.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::{
    Booking, Customer, EmailCounts, LogRow, NewScan, Progress, ResumeOutcome, ScanRow, ScanStatus,
    StartOutcome, Store, StoreResult,
};
use crate::i18n::Texts;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const SCAN_COLUMNS: &str = "scan_id, status, mode, progress, current_step, current_step_en, \
     events_scanned, events_total, emails_found, new_count, existing_count, error_message, \
     started_at, completed_at, last_event_id";

/// PostgreSQL behind one pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// After the one-running-scan index refused us inside `failed` (now
    /// unusable): the id of the scan that won.
    async fn winner(&self, failed: Transaction<'_, Postgres>) -> StoreResult<String> {
        drop(failed);
        let mut tx = self.pool.begin().await?;
        Ok(running_scan_id(&mut tx).await?.unwrap_or_default())
    }

    /// Connects to `url` and migrates the database.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

fn scan_from_row(row: &PgRow) -> StoreResult<ScanRow> {
    Ok(ScanRow {
        scan_id: row.try_get("scan_id")?,
        status: row.try_get::<String, _>("status")?.parse()?,
        mode: row.try_get("mode")?,
        figures: Progress {
            progress: row.try_get("progress")?,
            current_step: Texts {
                de: row.try_get("current_step")?,
                en: row.try_get("current_step_en")?,
            },
            events_scanned: row.try_get("events_scanned")?,
            events_total: row.try_get("events_total")?,
            emails_found: row.try_get("emails_found")?,
            new_count: row.try_get("new_count")?,
            existing_count: row.try_get("existing_count")?,
            last_event_id: row.try_get("last_event_id")?,
        },
        error_message: row.try_get("error_message")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

async fn insert_logs(
    tx: &mut Transaction<'_, Postgres>,
    scan_id: &str,
    logs: &[LogRow],
) -> StoreResult<()> {
    for log in logs {
        sqlx::query(
            "INSERT INTO scan_logs (scan_id, id, message, message_en, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(scan_id)
        .bind(log.id)
        .bind(&log.message.de)
        .bind(&log.message.en)
        .bind(log.created_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn email_counts_in(
    tx: &mut Transaction<'_, Postgres>,
    scan_id: &str,
) -> StoreResult<EmailCounts> {
    let (found, new): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE is_new) FROM scan_emails WHERE scan_id = $1",
    )
    .bind(scan_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(EmailCounts {
        emails_found: found,
        new_count: new,
    })
}

async fn running_scan_id(tx: &mut Transaction<'_, Postgres>) -> StoreResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT scan_id FROM scan_progress WHERE status = 'running'")
            .fetch_optional(&mut **tx)
            .await?,
    )
}

async fn scan_in(
    tx: &mut Transaction<'_, Postgres>,
    scan_id: &str,
) -> StoreResult<Option<ScanRow>> {
    let sql = format!("SELECT {SCAN_COLUMNS} FROM scan_progress WHERE scan_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scan_id)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(scan_from_row)
        .transpose()
}

/// Updates the figures of a scan `owner` runs; `false` when it is not theirs.
async fn update_figures(
    tx: &mut Transaction<'_, Postgres>,
    scan_id: &str,
    owner: &str,
    f: &Progress,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE scan_progress SET progress = GREATEST(progress, $1), current_step = $2, \
         current_step_en = $3, events_scanned = $4, events_total = $5, emails_found = $6, \
         new_count = $7, existing_count = $8, last_event_id = GREATEST(last_event_id, $9) \
         WHERE scan_id = $10 AND owner = $11 AND status = 'running'",
    )
    .bind(f.progress)
    .bind(&f.current_step.de)
    .bind(&f.current_step.en)
    .bind(f.events_scanned)
    .bind(f.events_total)
    .bind(f.emails_found)
    .bind(f.new_count)
    .bind(f.existing_count)
    .bind(f.last_event_id)
    .bind(scan_id)
    .bind(owner)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `error` is the one-running-scan index refusing a second one.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn single_process(&self) -> bool {
        false
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(scan_id = %scan.scan_id))]
    async fn start_scan(&self, scan: &NewScan) -> StoreResult<StartOutcome> {
        let mut tx = self.pool.begin().await?;
        if let Some(running) = running_scan_id(&mut tx).await? {
            return Ok(StartOutcome::AlreadyRunning(running));
        }
        let f = &scan.figures;
        let inserted = sqlx::query(
            "INSERT INTO scan_progress (scan_id, status, mode, progress, current_step, \
             current_step_en, started_at, owner, lease_until_ms, last_event_id) \
             VALUES ($1, 'running', $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&scan.scan_id)
        .bind(&scan.mode)
        .bind(f.progress)
        .bind(&f.current_step.de)
        .bind(&f.current_step.en)
        .bind(scan.started_at)
        .bind(&scan.owner)
        .bind(scan.lease_until_ms)
        .bind(f.last_event_id)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Another process started one between our check and insert.
            Err(e) if is_unique_violation(&e) => {
                return Ok(StartOutcome::AlreadyRunning(self.winner(tx).await?));
            }
            Err(e) => return Err(e.into()),
        }
        insert_logs(&mut tx, &scan.scan_id, &scan.logs).await?;
        let row = scan_in(&mut tx, &scan.scan_id)
            .await?
            .ok_or_else(|| super::StoreError::Corrupt("inserted scan vanished".into()))?;
        tx.commit().await?;
        Ok(StartOutcome::Started(row))
    }

    #[tracing::instrument(skip_all, fields(scan_id))]
    async fn resume_scan(
        &self,
        scan_id: &str,
        owner: &str,
        lease_until_ms: i64,
        logs: &[LogRow],
    ) -> StoreResult<ResumeOutcome> {
        let mut tx = self.pool.begin().await?;
        // Locked, so two resumes of one scan cannot both pass the checks.
        let sql = format!("SELECT {SCAN_COLUMNS} FROM scan_progress WHERE scan_id = $1 FOR UPDATE");
        let Some(scan) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scan_id)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(scan_from_row)
            .transpose()?
        else {
            return Ok(ResumeOutcome::NotFound);
        };
        if !scan.status.is_resumable() {
            return Ok(ResumeOutcome::NotResumable(scan.status));
        }
        if let Some(running) = running_scan_id(&mut tx).await? {
            return Ok(ResumeOutcome::AlreadyRunning(running));
        }
        let last = logs.last().map_or(scan.figures.last_event_id, |l| l.id);
        let updated = sqlx::query(
            "UPDATE scan_progress SET status = 'running', owner = $1, lease_until_ms = $2, \
             error_message = NULL, completed_at = NULL, last_event_id = $3 WHERE scan_id = $4",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(last)
        .bind(scan_id)
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Ok(ResumeOutcome::AlreadyRunning(self.winner(tx).await?));
            }
            Err(e) => return Err(e.into()),
        }
        insert_logs(&mut tx, scan_id, logs).await?;
        let row = scan_in(&mut tx, scan_id)
            .await?
            .ok_or_else(|| super::StoreError::Corrupt("resumed scan vanished".into()))?;
        tx.commit().await?;
        Ok(ResumeOutcome::Resumed(row))
    }

    async fn scan(&self, scan_id: &str) -> StoreResult<Option<ScanRow>> {
        let sql = format!("SELECT {SCAN_COLUMNS} FROM scan_progress WHERE scan_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scan_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(scan_from_row)
            .transpose()
    }

    async fn scans(&self, limit: i64) -> StoreResult<Vec<ScanRow>> {
        let sql = format!("SELECT {SCAN_COLUMNS} FROM scan_progress ORDER BY id DESC LIMIT $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(scan_from_row)
            .collect()
    }

    async fn logs_after(&self, scan_id: &str, after: i64, limit: i64) -> StoreResult<Vec<LogRow>> {
        let rows = sqlx::query(
            "SELECT id, message, message_en, created_at FROM scan_logs \
             WHERE scan_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(scan_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LogRow {
                    id: row.try_get("id")?,
                    message: Texts {
                        de: row.try_get("message")?,
                        en: row.try_get("message_en")?,
                    },
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn write_progress(
        &self,
        scan_id: &str,
        owner: &str,
        figures: &Progress,
        logs: &[LogRow],
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if !update_figures(&mut tx, scan_id, owner, figures).await? {
            return Ok(false);
        }
        insert_logs(&mut tx, scan_id, logs).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record_event(
        &self,
        scan_id: &str,
        owner: &str,
        event_uri: &str,
        bookings: &[Booking],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<EmailCounts>> {
        let mut tx = self.pool.begin().await?;
        // The row lock keeps a sweeper from interrupting the scan mid-record.
        let held: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM scan_progress WHERE scan_id = $1 AND owner = $2 AND status = 'running' \
             FOR UPDATE",
        )
        .bind(scan_id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            return Ok(None);
        }
        let fresh = sqlx::query(
            "INSERT INTO scan_events_done (scan_id, event_uri) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(scan_id)
        .bind(event_uri)
        .execute(&mut *tx)
        .await?;
        if fresh.rows_affected() == 1 {
            for b in bookings {
                let known: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM customers WHERE email = $1")
                        .bind(&b.email)
                        .fetch_optional(&mut *tx)
                        .await?;
                sqlx::query(
                    "INSERT INTO scan_emails (scan_id, email, is_new) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(scan_id)
                .bind(&b.email)
                .bind(known.is_none())
                .execute(&mut *tx)
                .await?;
                let booked = sqlx::query(
                    "INSERT INTO bookings (invitee_uri, email, event_uri, start_time, canceled) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&b.invitee_uri)
                .bind(&b.email)
                .bind(&b.event_uri)
                .bind(b.start_time)
                .bind(b.canceled)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query(
                    "INSERT INTO customers (email, name, name_folded, bookings, first_booking_at, \
                     last_booking_at, created_by_scan, created_at, updated_at) \
                     VALUES ($1, $2, $7, $3, $4, $4, $5, $6, $6) \
                     ON CONFLICT (email) DO UPDATE SET \
                       name = COALESCE(customers.name, excluded.name), \
                       name_folded = COALESCE(customers.name_folded, excluded.name_folded), \
                       bookings = customers.bookings + $3, \
                       first_booking_at = LEAST(customers.first_booking_at, excluded.first_booking_at), \
                       last_booking_at = GREATEST(customers.last_booking_at, excluded.last_booking_at), \
                       updated_at = excluded.updated_at",
                )
                .bind(&b.email)
                .bind(&b.name)
                .bind(i64::try_from(booked).unwrap_or(0))
                .bind(b.start_time)
                .bind(scan_id)
                .bind(now)
                .bind(b.name.as_deref().map(str::to_lowercase))
                .execute(&mut *tx)
                .await?;
            }
        }
        let counts = email_counts_in(&mut tx, scan_id).await?;
        tx.commit().await?;
        Ok(Some(counts))
    }

    async fn email_counts(&self, scan_id: &str) -> StoreResult<EmailCounts> {
        let mut tx = self.pool.begin().await?;
        email_counts_in(&mut tx, scan_id).await
    }

    async fn done_events(&self, scan_id: &str) -> StoreResult<HashSet<String>> {
        let uris: Vec<String> =
            sqlx::query_scalar("SELECT event_uri FROM scan_events_done WHERE scan_id = $1")
                .bind(scan_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(uris.into_iter().collect())
    }

    async fn finish_scan(
        &self,
        scan_id: &str,
        owner: &str,
        status: ScanStatus,
        error_message: Option<&str>,
        figures: &Progress,
        logs: &[LogRow],
        completed_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if !update_figures(&mut tx, scan_id, owner, figures).await? {
            return Ok(false);
        }
        insert_logs(&mut tx, scan_id, logs).await?;
        sqlx::query(
            "UPDATE scan_progress SET status = $1, error_message = $2, completed_at = $3, \
             owner = NULL, lease_until_ms = NULL WHERE scan_id = $4",
        )
        .bind(status.as_str())
        .bind(error_message)
        .bind(completed_at)
        .bind(scan_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn renew_lease(&self, scan_id: &str, owner: &str, until_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE scan_progress SET lease_until_ms = $1 \
             WHERE scan_id = $2 AND owner = $3 AND status = 'running'",
        )
        .bind(until_ms)
        .bind(scan_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn interrupt_stale(
        &self,
        now_ms: i64,
        all: bool,
        message: &Texts,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<ScanRow>> {
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: a scan its owner is writing right now is not stale.
        let stale: Vec<(String, i64)> = sqlx::query_as(
            "SELECT scan_id, last_event_id FROM scan_progress WHERE status = 'running' \
             AND ($1 OR lease_until_ms IS NULL OR lease_until_ms < $2) FOR UPDATE SKIP LOCKED",
        )
        .bind(all)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        let mut rows = Vec::with_capacity(stale.len());
        for (scan_id, last) in stale {
            let log = LogRow {
                id: last + 1,
                message: message.clone(),
                created_at: at,
            };
            // One id more than the line: the `done` event's, as for every
            // finished scan.
            sqlx::query(
                "UPDATE scan_progress SET status = 'interrupted', owner = NULL, \
                 lease_until_ms = NULL, completed_at = $1, last_event_id = $2 WHERE scan_id = $3",
            )
            .bind(at)
            .bind(log.id + 1)
            .bind(&scan_id)
            .execute(&mut *tx)
            .await?;
            insert_logs(&mut tx, &scan_id, std::slice::from_ref(&log)).await?;
            if let Some(row) = scan_in(&mut tx, &scan_id).await? {
                rows.push(row);
            }
        }
        tx.commit().await?;
        Ok(rows)
    }

    async fn customers(
        &self,
        query: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Customer>, i64)> {
        let pattern = super::like_pattern(query);
        let filter = "(email LIKE $1 ESCAPE '\\' OR name_folded LIKE $1 ESCAPE '\\')";
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM customers WHERE {filter}"
        )))
        .bind(&pattern)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT email, name, bookings, first_booking_at, last_booking_at, created_by_scan, \
             created_at FROM customers WHERE {filter} ORDER BY id DESC LIMIT $2 OFFSET $3"
        )))
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let customers = rows
            .iter()
            .map(|row| {
                Ok(Customer {
                    email: row.try_get("email")?,
                    name: row.try_get("name")?,
                    bookings: row.try_get("bookings")?,
                    first_booking_at: row.try_get("first_booking_at")?,
                    last_booking_at: row.try_get("last_booking_at")?,
                    created_by_scan: row.try_get("created_by_scan")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((customers, total))
    }

    async fn create_session(
        &self,
        id_hash: &str,
        username: &str,
        expires_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
            .bind(crate::time::now_ms())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sessions (id_hash, username, expires_ms) VALUES ($1, $2, $3)")
            .bind(id_hash)
            .bind(username)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_session(
        &self,
        id_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<Option<String>> {
        let found: Option<(String, i64)> =
            sqlx::query_as("SELECT username, expires_ms FROM sessions WHERE id_hash = $1")
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some((user, current)) = found.filter(|(_, until)| *until > now_ms) else {
            return Ok(None);
        };
        if current < expires_ms - super::SESSION_SLIDE_MS {
            sqlx::query("UPDATE sessions SET expires_ms = $1 WHERE id_hash = $2")
                .bind(expires_ms)
                .bind(id_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(user))
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
