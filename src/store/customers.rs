//! The customer table: calscan's own, or the school's that was there first.
//!
//! calscan never assumes its layout. At start it reads the table's columns
//! and finds the email column and the name column(s), by the settings or by
//! their usual names; what it writes is an email and a name, and every other
//! column gets the table's default. Its own figures per customer live in
//! `customer_stats`, keyed by the normalized email, so the table gains no
//! column and rows calscan did not insert are never written.

use std::fmt;

/// `CALSCAN_CUSTOMERS_TABLE`, `CALSCAN_CUSTOMER_EMAIL_COLUMN` and
/// `CALSCAN_CUSTOMER_NAME_COLUMNS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSettings {
    pub table: String,
    /// Detected when unset.
    pub email_column: Option<String>,
    /// One column, or `first,last`; detected when unset.
    pub name_columns: Option<String>,
}

impl Default for CustomerSettings {
    fn default() -> Self {
        Self {
            table: DEFAULT_TABLE.to_owned(),
            email_column: None,
            name_columns: None,
        }
    }
}

/// The table calscan's migrations create where none exists.
pub const DEFAULT_TABLE: &str = "customers";

/// Email columns, in the order they are looked for.
const EMAIL_COLUMNS: [&str; 4] = ["email", "e_mail", "mail", "email_address"];
/// One-column names, then pairs of first and last name, in that order.
const NAME_COLUMNS: [&str; 2] = ["name", "full_name"];
const NAME_PAIRS: [(&str, &str); 3] = [
    ("first_name", "last_name"),
    ("firstname", "lastname"),
    ("vorname", "nachname"),
];
/// NOT NULL timestamps without a default that calscan fills with the time it
/// inserts (calscan's own table of its first release has them).
const STAMP_COLUMNS: [&str; 2] = ["created_at", "updated_at"];

/// One column of a table, as the database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub not_null: bool,
    pub has_default: bool,
    /// Filled by the database: auto-increment, identity, generated.
    pub auto: bool,
    /// The longest text it takes, in characters, where it has a limit.
    pub max_chars: Option<i64>,
    pub primary: bool,
}

impl Column {
    /// Whether an insert that leaves this column out fails.
    fn needs_value(&self) -> bool {
        self.not_null && !self.has_default && !self.auto
    }
}

/// Where the customer's name goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameColumns {
    None,
    One(String),
    Split { first: String, last: String },
}

impl fmt::Display for NameColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::One(c) => f.write_str(c),
            Self::Split { first, last } => write!(f, "{first} + {last}"),
        }
    }
}

/// A text column's name and what it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    name: String,
    max_chars: Option<i64>,
    not_null: bool,
}

impl Slot {
    fn of(column: &Column) -> Self {
        Self {
            name: column.name.clone(),
            max_chars: column.max_chars,
            not_null: column.not_null,
        }
    }

    /// The value as the column takes it: cut to its length, and `""` rather
    /// than NULL where NULL is refused.
    fn fit(&self, value: Option<&str>) -> Option<String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        match (value, self.max_chars) {
            (Some(v), Some(max)) => Some(v.chars().take(max.max(0) as usize).collect()),
            (Some(v), None) => Some(v.to_owned()),
            (None, _) if self.not_null => Some(String::new()),
            (None, _) => None,
        }
    }
}

/// The customer table as calscan uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerLayout {
    pub table: String,
    pub email: String,
    /// The longest email the email column takes, in characters.
    pub email_chars: Option<i64>,
    pub names: NameColumns,
    /// The primary key, for "newest first"; the email where there is none.
    pub order_by: String,
    /// Whether that key is a number the database counts up (rows added
    /// later have higher keys).
    pub serial_key: bool,
    /// NOT NULL timestamps without a default that calscan fills.
    pub stamps: Vec<String>,
    name_slots: Vec<Slot>,
}

/// A customer's name as Calendly gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonName<'a> {
    /// The display name.
    pub full: Option<&'a str>,
    /// Calendly's `first_name`/`last_name`, when the event type asks for them.
    pub first: Option<&'a str>,
    pub last: Option<&'a str>,
}

impl CustomerLayout {
    /// Finds the email and name columns in `columns` (the table's, empty when
    /// it does not exist). The error says what to set.
    pub fn resolve(settings: &CustomerSettings, columns: &[Column]) -> Result<Self, String> {
        let table = &settings.table;
        if !is_identifier(table) {
            return Err(format!(
                "CALSCAN_CUSTOMERS_TABLE is {table:?}: give a plain table name (letters, digits, _)"
            ));
        }
        if columns.is_empty() {
            return Err(format!(
                "the customer table `{table}` does not exist: create it, or set \
                 CALSCAN_CUSTOMERS_TABLE to the table that holds the customers"
            ));
        }
        let find = |name: &str| columns.iter().find(|c| c.name.eq_ignore_ascii_case(name));
        let listed = || {
            columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let email = match &settings.email_column {
            Some(named) => find(named).ok_or_else(|| {
                format!(
                    "CALSCAN_CUSTOMER_EMAIL_COLUMN names `{named}`, which `{table}` does not \
                     have (its columns: {})",
                    listed()
                )
            })?,
            None => EMAIL_COLUMNS.iter().find_map(|n| find(n)).ok_or_else(|| {
                format!(
                    "the customer table `{table}` has no email column (looked for {}): set \
                     CALSCAN_CUSTOMER_EMAIL_COLUMN to the one that holds the emails (its \
                     columns: {})",
                    EMAIL_COLUMNS.join(", "),
                    listed()
                )
            })?,
        };
        let names: Vec<&Column> = match &settings.name_columns {
            Some(named) => {
                let parts: Vec<&str> = named.split(',').map(str::trim).collect();
                if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
                    return Err(format!(
                        "CALSCAN_CUSTOMER_NAME_COLUMNS is {named:?}: give one column, or two as \
                         `first,last`"
                    ));
                }
                parts
                    .iter()
                    .map(|p| {
                        find(p).ok_or_else(|| {
                            format!(
                                "CALSCAN_CUSTOMER_NAME_COLUMNS names `{p}`, which `{table}` does \
                                 not have (its columns: {})",
                                listed()
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            None => NAME_COLUMNS
                .iter()
                .find_map(|n| find(n))
                .map(|c| vec![c])
                .or_else(|| {
                    NAME_PAIRS
                        .iter()
                        .find_map(|(f, l)| Some(vec![find(f)?, find(l)?]))
                })
                .unwrap_or_default(),
        };
        let written: Vec<&str> = std::iter::once(email.name.as_str())
            .chain(names.iter().map(|c| c.name.as_str()))
            .collect();
        if let Some(odd) = written.iter().find(|n| !is_identifier(n)) {
            return Err(format!(
                "the column `{odd}` of `{table}` has a name calscan does not quote into SQL \
                 (letters, digits and _ only)"
            ));
        }
        let stamps: Vec<String> = columns
            .iter()
            .filter(|c| c.needs_value() && !written.contains(&c.name.as_str()))
            .filter(|c| STAMP_COLUMNS.iter().any(|s| c.name.eq_ignore_ascii_case(s)))
            .map(|c| c.name.clone())
            .collect();
        let unfilled: Vec<&str> = columns
            .iter()
            .filter(|c| c.needs_value())
            .map(|c| c.name.as_str())
            .filter(|n| !written.contains(n) && !stamps.iter().any(|s| s == n))
            .collect();
        if !unfilled.is_empty() {
            return Err(format!(
                "the customer table `{table}` has NOT NULL columns without a default that \
                 calscan cannot fill: {}. Give each a default (ALTER TABLE {table} ALTER COLUMN \
                 … SET DEFAULT …) or let it be NULL; calscan writes only the email and the name",
                unfilled.join(", ")
            ));
        }
        let primary: Vec<&Column> = columns.iter().filter(|c| c.primary).collect();
        let (order_by, serial_key) = match primary.as_slice() {
            [key] if is_identifier(&key.name) => (
                key.name.clone(),
                key.auto && key.data_type.to_ascii_lowercase().contains("int"),
            ),
            _ => (email.name.clone(), false),
        };
        Ok(Self {
            table: table.clone(),
            email: email.name.clone(),
            email_chars: email.max_chars,
            names: match names.as_slice() {
                [] => NameColumns::None,
                [one] => NameColumns::One(one.name.clone()),
                [first, last, ..] => NameColumns::Split {
                    first: first.name.clone(),
                    last: last.name.clone(),
                },
            },
            order_by,
            serial_key,
            stamps,
            name_slots: names.into_iter().map(Slot::of).collect(),
        })
    }

    /// Whether the email column takes `email` whole (an email is never cut).
    pub fn fits(&self, email: &str) -> bool {
        fits(email, self.email_chars)
    }

    /// The name columns, in the order [`Self::name_values`] fills them.
    pub fn name_columns(&self) -> Vec<&str> {
        self.name_slots.iter().map(|s| s.name.as_str()).collect()
    }

    /// The values for the name columns of a new customer.
    pub fn name_values(&self, name: &PersonName<'_>) -> Vec<Option<String>> {
        match self.name_slots.as_slice() {
            [] => Vec::new(),
            [one] => vec![one.fit(name.full.or(name.first))],
            [first, last, ..] => {
                let given = name.first.map(str::trim).filter(|f| !f.is_empty());
                let (f, l) = match given {
                    Some(given) => (Some(given.to_owned()), name.last.map(str::to_owned)),
                    None => match name.full {
                        Some(full) => {
                            let (f, l) = split_name(full);
                            (Some(f), l)
                        }
                        None => (None, name.last.map(str::to_owned)),
                    },
                };
                vec![first.fit(f.as_deref()), last.fit(l.as_deref())]
            }
        }
    }
}

/// Family-name particles that begin a last name: "Ludwig van Beethoven" is
/// "Ludwig" and "van Beethoven".
const PARTICLES: [&str; 16] = [
    "von", "van", "vom", "zu", "zum", "zur", "de", "der", "den", "del", "della", "di", "da", "du",
    "le", "la",
];

/// Splits a full name into first and last name: the last word is the last
/// name, and a particle before it (von, van, de, …) belongs to it; one word
/// is a first name only.
pub fn split_name(full: &str) -> (String, Option<String>) {
    let words: Vec<&str> = full.split_whitespace().collect();
    if words.len() < 2 {
        return (words.concat(), None);
    }
    let mut cut = words.len() - 1;
    while cut > 1 && PARTICLES.contains(&words[cut - 1].to_lowercase().as_str()) {
        cut -= 1;
    }
    (words[..cut].join(" "), Some(words[cut..].join(" ")))
}

/// Whether a column of at most `max_chars` characters takes `email` whole.
pub fn fits(email: &str, max_chars: Option<i64>) -> bool {
    max_chars.is_none_or(|max| email.chars().count() as i64 <= max)
}

/// Whether `name` may be spliced into SQL as a quoted identifier: letters,
/// digits and `_`, not starting with a digit, at most 64 characters.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str) -> Column {
        Column {
            name: name.into(),
            data_type: "varchar".into(),
            not_null: false,
            has_default: false,
            auto: false,
            max_chars: None,
            primary: false,
        }
    }

    fn settings() -> CustomerSettings {
        CustomerSettings {
            table: "kunden".into(),
            ..CustomerSettings::default()
        }
    }

    #[test]
    fn names_split_at_the_last_word_keeping_particles_with_it() {
        for (full, first, last) in [
            ("Anna Müller", "Anna", Some("Müller")),
            ("Anna Maria  Müller", "Anna Maria", Some("Müller")),
            ("Ludwig van Beethoven", "Ludwig", Some("van Beethoven")),
            (
                "Johann Wolfgang von Goethe",
                "Johann Wolfgang",
                Some("von Goethe"),
            ),
            ("Cher", "Cher", None),
            ("  ", "", None),
        ] {
            assert_eq!(
                split_name(full),
                (first.to_owned(), last.map(str::to_owned)),
                "{full}"
            );
        }
    }

    #[test]
    fn the_layout_is_found_by_the_usual_names() {
        let id = Column {
            primary: true,
            auto: true,
            not_null: true,
            ..column("id")
        };
        let layout = CustomerLayout::resolve(
            &settings(),
            &[id, column("Vorname"), column("E_Mail"), column("Nachname")],
        )
        .unwrap();
        assert_eq!(layout.email, "E_Mail");
        assert_eq!(
            layout.names,
            NameColumns::Split {
                first: "Vorname".into(),
                last: "Nachname".into()
            }
        );
        assert_eq!(layout.order_by, "id");
        // One column wins over a pair; no name column is fine too.
        let one = CustomerLayout::resolve(&settings(), &[column("mail"), column("name")]).unwrap();
        assert_eq!(one.names, NameColumns::One("name".into()));
        assert_eq!(one.order_by, "mail");
        let none = CustomerLayout::resolve(&settings(), &[column("email_address")]).unwrap();
        assert_eq!(none.names, NameColumns::None);
    }

    #[test]
    fn settings_name_the_columns_and_say_what_is_wrong() {
        let columns = [column("kontakt"), column("rufname"), column("familie")];
        let named = CustomerSettings {
            email_column: Some("kontakt".into()),
            name_columns: Some("rufname, familie".into()),
            ..settings()
        };
        let layout = CustomerLayout::resolve(&named, &columns).unwrap();
        assert_eq!(layout.name_columns(), ["rufname", "familie"]);

        let error = CustomerLayout::resolve(&settings(), &columns).unwrap_err();
        assert!(error.contains("CALSCAN_CUSTOMER_EMAIL_COLUMN"), "{error}");
        let wrong = CustomerSettings {
            name_columns: Some("a,b,c".into()),
            ..named.clone()
        };
        let error = CustomerLayout::resolve(&wrong, &columns).unwrap_err();
        assert!(error.contains("first,last"), "{error}");
        let error = CustomerLayout::resolve(&settings(), &[]).unwrap_err();
        assert!(error.contains("does not exist"), "{error}");
    }

    #[test]
    fn a_not_null_column_without_a_default_is_refused_unless_calscan_fills_it() {
        let required = |name: &str| Column {
            not_null: true,
            ..column(name)
        };
        let error = CustomerLayout::resolve(
            &settings(),
            &[
                required("email"),
                required("telefon"),
                required("created_at"),
            ],
        )
        .unwrap_err();
        assert!(
            error.contains("telefon") && !error.contains("created_at"),
            "{error}"
        );
        let layout =
            CustomerLayout::resolve(&settings(), &[required("email"), required("created_at")])
                .unwrap();
        assert_eq!(layout.stamps, ["created_at"]);
    }

    #[test]
    fn names_fit_their_columns() {
        let first = Column {
            max_chars: Some(5),
            ..column("vorname")
        };
        let last = Column {
            not_null: true,
            has_default: true,
            ..column("nachname")
        };
        let layout = CustomerLayout::resolve(&settings(), &[column("email"), first, last]).unwrap();
        let values = |full, first, last| layout.name_values(&PersonName { full, first, last });
        // Calendly's own first and last name win over splitting.
        assert_eq!(
            values(Some("Dr. Anna Müller"), Some("Anna"), Some("Müller")),
            [Some("Anna".to_owned()), Some("Müller".to_owned())]
        );
        assert_eq!(
            values(Some("Maximilian Huber"), None, None),
            [Some("Maxim".to_owned()), Some("Huber".to_owned())]
        );
        // NULL where the column allows it, "" where it does not.
        assert_eq!(
            values(Some("Cher"), None, None),
            [Some("Cher".to_owned()), Some(String::new())]
        );
        assert_eq!(values(None, None, None), [None, Some(String::new())]);
    }

    #[test]
    fn identifiers_are_plain_names_only() {
        assert!(is_identifier("customers"));
        assert!(is_identifier("_kunden2"));
        for bad in [
            "",
            "2x",
            "a-b",
            "a b",
            "a`b",
            "a\"b",
            "a;b",
            &"x".repeat(65),
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
