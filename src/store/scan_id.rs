//! A scan's id, checked once where it enters: the path of a route, the
//! legacy API's query, a row of the database.

use std::fmt;

use serde::Serialize;

/// `scan_`, then 8 to 40 lowercase letters and digits. calscan makes
/// `scan_` and a lowercase ULID (sortable, 26 characters); the PHP
/// scanner's ids (`scan_` and 13 hex digits) fit too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^scan_[0-9a-z]{8,40}$")]
pub struct ScanId(String);

/// Why a text is not a scan id; says what one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a scan id is scan_ followed by 8 to 40 characters of 0-9 and a-z")]
pub struct InvalidScanId;

impl ScanId {
    /// A new id: `scan_` and a lowercase ULID.
    pub fn generate() -> Self {
        Self(format!(
            "scan_{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        ))
    }

    pub fn parse(id: impl Into<String>) -> Result<Self, InvalidScanId> {
        let id = id.into();
        let valid = id.strip_prefix("scan_").is_some_and(|rest| {
            (8..=40).contains(&rest.len())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        });
        if valid {
            Ok(Self(id))
        } else {
            Err(InvalidScanId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ScanId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ScanId {
    type Err = InvalidScanId;

    fn from_str(id: &str) -> Result<Self, InvalidScanId> {
        Self::parse(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_and_php_ids_parse_and_nothing_else_does() {
        let id = ScanId::generate();
        assert_eq!(ScanId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.len(), 31);
        assert!(ScanId::parse("scan_6789abcdef123").is_ok());
        for bad in [
            "",
            "scan_",
            "scan_abc",
            "scan_ABCDEFGH1",
            "scan_abcdefgh-",
            "xscan_abcdefgh",
            &format!("scan_{}", "a".repeat(41)),
        ] {
            assert_eq!(ScanId::parse(bad), Err(InvalidScanId), "{bad}");
        }
    }
}
