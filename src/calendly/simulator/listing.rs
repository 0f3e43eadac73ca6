//! The query side of the list endpoints: `count`, `sort` and `page_token`
//! checked against the filters a page token was issued for, the page cut out
//! of a sorted listing, and reading query parameters.

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Shared;
use super::answer::Refusal;
use super::paging::{Filters, PageSpan};

/// A request's query parameters, in order and with repeats.
pub(super) type Params = Query<Vec<(String, String)>>;

/// Calendly's default and largest page sizes.
const DEFAULT_COUNT: usize = 20;
const MAX_COUNT: usize = 100;

/// The paging part of a list request: `count`, `sort`, `page_token`.
pub(super) struct Listing {
    count: usize,
    descending: bool,
    offset: usize,
    filters: Filters,
}

impl Listing {
    /// Validates `count`, `sort` (on `sort_field`), `status` and the page
    /// token against the other filters (`filter_keys`).
    pub(super) fn parse(
        params: &[(String, String)],
        sort_field: &str,
        sim: &Shared,
        filter_keys: &[&str],
    ) -> Result<Self, Refusal> {
        let get = |key: &str| param(params, key);
        let count = match get("count") {
            None => DEFAULT_COUNT,
            Some(c) => match c.parse::<usize>() {
                Ok(n) if (1..=MAX_COUNT).contains(&n) => n,
                _ => return Err(Refusal::Invalid("count", "must be between 1 and 100")),
            },
        };
        let mut descending = match get("sort") {
            None => false,
            Some(s) if s == format!("{sort_field}:asc") => false,
            Some(s) if s == format!("{sort_field}:desc") => true,
            Some(_) => return Err(Refusal::Invalid("sort", "is invalid")),
        };
        if get("status").is_some_and(|s| s != "active" && s != "canceled") {
            return Err(Refusal::Invalid(
                "status",
                "must be one of active, canceled",
            ));
        }
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| filter_keys.contains(&k.as_str()))
            .cloned()
            .collect();
        pairs.push(("count".into(), count.to_string()));
        let filters = Filters::new(pairs);
        let mut offset = 0;
        if let Some(token) = get("page_token") {
            match filters.redeem(token, sim.now_ms(), sim.config.page_token_ttl) {
                Some(cursor) => {
                    offset = cursor.offset;
                    descending = cursor.descending;
                }
                None => return Err(Refusal::Invalid("page_token", "is invalid")),
            }
        }
        Ok(Self {
            count,
            descending,
            offset,
            filters,
        })
    }

    /// Sorts `items` by `key` (then by position, which is stable), cuts this
    /// page out and renders it with its pagination object.
    pub(super) fn page<T>(
        &self,
        sim: &Shared,
        endpoint: &str,
        items: &mut Vec<&T>,
        key: impl Fn(&T) -> DateTime<Utc>,
        render: impl Fn(&T) -> Value,
    ) -> Response {
        items.sort_by_key(|i| key(i));
        if self.descending {
            items.reverse();
        }
        let page: Vec<Value> = items
            .iter()
            .skip(self.offset)
            .take(self.count)
            .map(|i| render(i))
            .collect();
        let span = PageSpan {
            offset: self.offset,
            count: self.count,
            len: page.len(),
            total: items.len(),
            descending: self.descending,
        };
        let endpoint = format!("{}/{endpoint}", sim.base_url);
        let pagination = self.filters.pagination(&endpoint, span, sim.now_ms());
        axum::Json(json!({"collection": page, "pagination": pagination})).into_response()
    }
}

/// The first value of query parameter `key`.
pub(super) fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(super) fn parse_time(
    value: Option<&str>,
    name: &'static str,
) -> Result<Option<DateTime<Utc>>, Refusal> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Refusal::Invalid(name, "is invalid"))
        })
        .transpose()
}
