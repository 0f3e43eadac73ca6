//! Calendly-style pagination: opaque page tokens bound to the filters they
//! were issued for, with a lifetime, and the five-key pagination object with
//! absolute `next_page`/`previous_page` URLs.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a token carries. Calendly's tokens are opaque; this one is base64 of
/// a small JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Index of the page's first item.
    #[serde(rename = "o")]
    pub offset: usize,
    /// Descending order. The sort travels in the token, not in `next_page`.
    #[serde(rename = "d")]
    pub descending: bool,
    /// Fingerprint of the filters the token was issued for.
    #[serde(rename = "f")]
    fingerprint: u64,
    /// Issue time, unix milliseconds.
    #[serde(rename = "t")]
    issued_ms: i64,
}

/// Where one page stands in its listing.
#[derive(Debug, Clone, Copy)]
pub struct PageSpan {
    /// Index of the page's first item.
    pub offset: usize,
    /// The requested page size.
    pub count: usize,
    /// Items on this page.
    pub len: usize,
    /// Items in the whole listing.
    pub total: usize,
    pub descending: bool,
}

/// The query parameters that define a listing, in Calendly's alphabetical
/// order, without `page_token` and `sort`.
#[derive(Debug, Clone)]
pub struct Filters(Vec<(String, String)>);

impl Filters {
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort();
        Self(pairs)
    }

    fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.0.hash(&mut hasher);
        hasher.finish()
    }

    /// Reads `token`, which must have been issued for these filters no longer
    /// than `ttl` before `now_ms`.
    pub fn redeem(&self, token: &str, now_ms: i64, ttl: Duration) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let cursor: Cursor = serde_json::from_slice(&bytes).ok()?;
        let age = now_ms.saturating_sub(cursor.issued_ms);
        let fresh = (0..=i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)).contains(&age);
        (fresh && cursor.fingerprint == self.fingerprint()).then_some(cursor)
    }

    fn token(&self, offset: usize, descending: bool, now_ms: i64) -> String {
        let cursor = Cursor {
            offset,
            descending,
            fingerprint: self.fingerprint(),
            issued_ms: now_ms,
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
    }

    fn url(&self, endpoint: &str, token: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("page_token", token)])
            .collect();
        pairs.sort();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{endpoint}?{query}")
    }

    /// The pagination object of the page `span`, with links on `endpoint`
    /// (an absolute URL without query).
    pub fn pagination(&self, endpoint: &str, span: PageSpan, now_ms: i64) -> Value {
        let PageSpan {
            offset,
            count,
            len,
            total,
            descending,
        } = span;
        let next = (offset + len < total).then(|| self.token(offset + count, descending, now_ms));
        let previous =
            (offset > 0).then(|| self.token(offset.saturating_sub(count), descending, now_ms));
        let link = |token: &Option<String>| token.as_ref().map(|t| self.url(endpoint, t));
        json!({
            "count": len,
            "next_page": link(&next),
            "next_page_token": next,
            "previous_page": link(&previous),
            "previous_page_token": previous,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(org: &str) -> Filters {
        Filters::new(vec![
            ("organization".into(), org.into()),
            ("count".into(), "2".into()),
        ])
    }

    fn span(offset: usize, len: usize) -> PageSpan {
        PageSpan {
            offset,
            count: 2,
            len,
            total: 5,
            descending: false,
        }
    }

    #[test]
    fn a_token_is_redeemable_only_for_its_filters_and_within_its_lifetime() {
        let f = filters("https://x/organizations/1");
        let p = f.pagination("http://h/scheduled_events", span(0, 2), 1_000);
        let token = p["next_page_token"].as_str().unwrap();
        let ttl = Duration::from_secs(60);
        let cursor = f.redeem(token, 2_000, ttl).unwrap();
        assert_eq!((cursor.offset, cursor.descending), (2, false));
        assert!(
            filters("https://x/organizations/2")
                .redeem(token, 2_000, ttl)
                .is_none()
        );
        assert!(f.redeem(token, 61_001, ttl).is_none());
        assert!(f.redeem("garbage!", 2_000, ttl).is_none());
    }

    #[test]
    fn next_page_is_absolute_sorted_and_carries_the_filters() {
        let f = filters("https://x/organizations/1");
        let p = f.pagination("http://h/scheduled_events", span(2, 2), 0);
        let next = p["next_page"].as_str().unwrap();
        assert!(next.starts_with(
            "http://h/scheduled_events?count=2&organization=https%3A%2F%2Fx%2Forganizations%2F1&page_token="
        ));
        assert!(p["previous_page"].as_str().is_some());
        let last = f.pagination("http://h/scheduled_events", span(4, 1), 0);
        assert!(last["next_page"].is_null() && last["next_page_token"].is_null());
        assert_eq!(last["count"], 1);
    }
}
