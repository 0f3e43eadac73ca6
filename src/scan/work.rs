//! How far a scan is, by the Calendly calls it made against those it still
//! expects, and about how long the rest takes.
//!
//! A scan's time goes to its calls: one for the organization, one per page
//! of events, one per event for its invitees. The invitee calls are about
//! 95 % of them, so the bar follows the calls, not fixed stages. While the
//! events are still being listed their number is not known: the estimate
//! takes one more page while Calendly says there is one, and what a full
//! scan listed before.

use std::time::Duration;

use tokio::time::Instant;

use crate::calendly::{Budget, PAGE_SIZE};

/// The share of the bar the calls fill; the last point is the end.
const CALLS_SHARE: i64 = 99;

/// Calls into the invitee phase before its pace says anything.
const PACE_AFTER_CALLS: i64 = 3;

/// A scan's calls, made and expected.
#[derive(Debug, Clone)]
pub(super) struct Work {
    /// Calls made (with those an earlier run of the scan made).
    done: i64,
    /// Calls expected in all, at least `done`.
    expected: i64,
    /// Events listed so far.
    listed: i64,
    /// Pages of events read so far.
    pages: i64,
    /// What a full scan listed before, when one did: the estimate while listing.
    usual_events: Option<i64>,
    /// When the invitee phase began, and the calls made by then.
    paced_from: Option<(Instant, i64)>,
}

impl Work {
    /// Before the first call; `usual_events` is what a full scan listed before.
    pub(super) fn new(usual_events: Option<i64>) -> Self {
        let mut work = Self {
            done: 0,
            expected: 1,
            listed: 0,
            pages: 0,
            usual_events,
            paced_from: None,
        };
        work.expect_listing(true);
        work
    }

    /// The organization is known.
    pub(super) fn connected(&mut self) {
        self.done += 1;
    }

    /// A page of `count` events was read; Calendly says whether another follows.
    pub(super) fn page(&mut self, count: i64, more: bool) {
        self.done += 1;
        self.pages += 1;
        self.listed += count;
        self.expect_listing(more);
    }

    fn expect_listing(&mut self, more: bool) {
        let events = if more {
            (self.listed + PAGE_SIZE).max(self.usual_events.unwrap_or(0))
        } else {
            self.listed
        };
        let pages_left = if more {
            (events - self.listed + PAGE_SIZE - 1) / PAGE_SIZE
        } else {
            0
        };
        self.expected = 1 + self.pages + pages_left + events;
    }

    /// Every event is listed; `already` of them were done by an earlier run.
    pub(super) fn listed(&mut self, total: i64, already: i64, now: Instant) {
        self.listed = total;
        self.expected = 1 + self.pages + total;
        self.done = 1 + self.pages + already;
        self.paced_from = Some((now, self.done));
    }

    /// One more event's invitees are in.
    pub(super) fn event_done(&mut self) {
        self.done = (self.done + 1).min(self.expected);
    }

    /// 0–99 as the calls go; 100 belongs to the end.
    pub(super) fn progress(&self) -> i64 {
        CALLS_SHARE * self.done / self.expected.max(1)
    }

    /// About how long the calls still to make take at `now`: at the pace of
    /// the invitee phase so far, and no less than Calendly's budget allows
    /// (the calls beyond the current window wait for the windows after it).
    /// `None` before the pace says anything.
    pub(super) fn eta(&self, budget: &Budget, now: Instant) -> Option<Duration> {
        let (since, done_then) = self.paced_from?;
        let left = self.expected - self.done;
        if left <= 0 {
            return Some(Duration::ZERO);
        }
        let paced = self.done - done_then;
        if paced < PACE_AFTER_CALLS {
            return None;
        }
        let per_call = now.saturating_duration_since(since).as_secs_f64() / paced as f64;
        let at_pace = Duration::from_secs_f64(per_call * left as f64);
        Some(at_pace.max(budget_floor(budget, left as u64, now)))
    }
}

/// The least time `left` calls take within Calendly's budget: those the
/// current window still allows go now, the rest a window's limit at a time.
fn budget_floor(budget: &Budget, left: u64, now: Instant) -> Duration {
    let (Some(limit), Some(window)) = (budget.limit, budget.window) else {
        return Duration::ZERO;
    };
    let limit = u64::from(limit.max(1));
    let beyond = left.saturating_sub(u64::from(budget.remaining.unwrap_or(0)));
    if beyond == 0 {
        return Duration::ZERO;
    }
    let to_reset = budget
        .reset_at
        .map_or(window, |at| at.saturating_duration_since(now));
    // The calls beyond go in the windows after this one; the last of them
    // starts its window, which need not be waited out.
    let windows_after = (beyond - 1) / limit;
    to_reset + window * windows_after as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_follows_the_calls_and_never_goes_back() {
        // 1,300 events of a full scan that listed 1,300 before.
        let mut work = Work::new(Some(1_300));
        let mut seen = vec![work.progress()];
        work.connected();
        seen.push(work.progress());
        for page in 0..13 {
            work.page(100, page < 12);
            seen.push(work.progress());
        }
        let now = Instant::now();
        work.listed(1_300, 0, now);
        seen.push(work.progress());
        assert!(work.progress() <= 1, "listing is 1 % of the calls");
        for n in 0..1_300 {
            work.event_done();
            seen.push(work.progress());
            if n == 984 {
                // 985 of 1,300 events: 76 % of the calls, not 62 %.
                assert_eq!(work.progress(), 75);
            }
        }
        assert_eq!(work.progress(), 99);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    }

    #[test]
    fn without_a_full_scan_before_the_listing_expects_one_more_page() {
        let mut work = Work::new(None);
        work.connected();
        work.page(100, true);
        // 1 + 1 page + 1 more page + 200 events.
        assert_eq!(work.expected, 203);
        work.page(40, false);
        assert_eq!(work.expected, 1 + 2 + 140);
    }

    #[test]
    fn a_resumed_scan_counts_what_its_earlier_run_did() {
        let mut work = Work::new(Some(300));
        work.connected();
        work.page(100, true);
        work.page(100, true);
        work.page(100, false);
        work.listed(300, 150, Instant::now());
        assert_eq!(work.progress(), 99 * (1 + 3 + 150) / (1 + 3 + 300));
    }

    #[test]
    fn the_estimate_keeps_the_pace_and_waits_for_the_windows_it_needs() {
        let start = Instant::now();
        let mut work = Work::new(None);
        work.connected();
        work.page(100, true);
        work.page(100, true);
        work.page(100, false);
        work.listed(300, 0, start);
        let unknown = Budget::default();
        assert_eq!(work.eta(&unknown, start), None, "no pace yet");
        for _ in 0..100 {
            work.event_done();
        }
        // 100 calls in 10 s: 200 more take 20 s at that pace.
        let now = start + Duration::from_secs(10);
        assert_eq!(work.eta(&unknown, now), Some(Duration::from_secs(20)));
        // 100 a minute, 30 left in this window that ends in 50 s: 170
        // calls wait for this window's end and one more after it.
        let budget = Budget {
            limit: Some(100),
            window: Some(Duration::from_secs(60)),
            remaining: Some(30),
            reset_at: Some(now + Duration::from_secs(50)),
        };
        assert_eq!(work.eta(&budget, now), Some(Duration::from_secs(110)));
        for _ in 0..200 {
            work.event_done();
        }
        assert_eq!(work.eta(&budget, now), Some(Duration::ZERO));
    }
}
