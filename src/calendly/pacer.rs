//! Pacing by Calendly's own rate-limit headers.
//!
//! Calendly sends `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` (seconds until the window resets) on every answer. The
//! pacer keeps the budget those headers describe and hands out one permit per
//! request: while the window has budget, requests go at once (up to the
//! client's concurrency); when it is spent, everyone waits for the reset
//! instead of collecting 429s. A 429 blocks every request until its wait is
//! over.
//!
//! Until the first answer the limit is unknown, so only one request may be in
//! flight. All waiting uses tokio's clock, so tests can pause time.
//!
//! Where the window ends: `X-RateLimit-Reset` counts whole seconds, rounded
//! up (a 429 at the start of a 60 s window says `60`), and was computed
//! before the answer reached us. So "now + reset" on receipt is never earlier
//! than the window's real end, and each answer of a window bounds that end
//! from above: the earliest bound wins. Over a window's answers the bound
//! closes in on the real end, so a spent window costs no idle second per
//! reset (measured in `BENCHMARKS.md`, scenario 6b).
//!
//! How much is left: our own count of the requests we sent in the window is
//! exact for a token only we use; an answer's `X-RateLimit-Remaining` can
//! only lower it (somebody else spends the same budget). Answers to requests
//! sent in an earlier window are ignored.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// A reset value above this is an epoch timestamp, not a number of seconds
/// (about 2001-09-09; no window lasts 31 years).
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// An answer whose window ends later than the one we know by more than this
/// belongs to a newer window (the header has whole-second resolution, plus
/// latency).
const SAME_WINDOW_SLACK: Duration = Duration::from_secs(2);

/// A wait for the window shorter than this is not worth telling anyone.
const PAUSE_WORTH_TELLING: Duration = Duration::from_secs(2);

/// The rate-limit headers of one answer, as far as they were present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    /// Time until the window resets.
    pub reset: Option<Duration>,
    /// `Retry-After`, on a 429.
    pub retry_after: Option<Duration>,
}

impl RateHeaders {
    /// Reads the headers, ignoring any that are missing or malformed.
    pub fn parse(headers: &HeaderMap) -> Self {
        let number = |name: &str| -> Option<u64> {
            headers
                .get(name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| v.ceil() as u64)
        };
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            limit: number("x-ratelimit-limit").map(clamp),
            remaining: number("x-ratelimit-remaining").map(clamp),
            reset: number("x-ratelimit-reset").map(seconds_or_epoch),
            retry_after: headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        }
    }

    /// How long a 429 asks to wait: `Retry-After`, else `X-RateLimit-Reset`.
    pub fn wait_hint(&self) -> Option<Duration> {
        self.retry_after.or(self.reset)
    }
}

/// `X-RateLimit-Reset` is documented as seconds until the reset; some proxies
/// and other APIs send an epoch instead. A value that can only be an epoch is
/// read as one.
fn seconds_or_epoch(value: u64) -> Duration {
    if value < EPOCH_THRESHOLD {
        return Duration::from_secs(value);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Duration::from_secs(value.saturating_sub(now))
}

/// `Retry-After` is either delay-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds_or_epoch(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[derive(Debug, Default)]
struct Window {
    /// Requests the current window still allows us, `None` before the first answer.
    remaining: Option<u32>,
    limit: Option<u32>,
    /// When the current window ends (by our clock, never earlier than Calendly's);
    /// `None` from the moment a window is over until an answer tells the next one's.
    reset_at: Option<Instant>,
    /// Counts windows; a permit remembers the one it was sent in.
    epoch: u64,
    /// Requests sent and not yet answered.
    in_flight: u32,
    /// After a 429: nobody sends before this.
    blocked_until: Option<Instant>,
    /// The longest reset an answer named: about the window's length.
    longest_reset: Option<Duration>,
}

/// Shared by every request of one client.
#[derive(Debug)]
pub struct Pacer {
    window: Mutex<Window>,
    changed: Notify,
    /// Until when requests wait for the rate limit; `None` while they go.
    pause: watch::Sender<Option<Instant>>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            window: Mutex::default(),
            changed: Notify::new(),
            pause: watch::Sender::new(None),
        }
    }
}

/// What the pacer knows of Calendly's budget, for an estimate of how long
/// the calls still to make take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// Requests a window allows.
    pub limit: Option<u32>,
    /// About how long a window lasts.
    pub window: Option<Duration>,
    /// Requests the current window still allows.
    pub remaining: Option<u32>,
    /// When the current window ends.
    pub reset_at: Option<Instant>,
}

/// Leave to send one request. Report its answer's headers with
/// [`Permit::observe`]; dropping it frees the slot either way.
#[derive(Debug)]
pub struct Permit<'a> {
    pacer: &'a Pacer,
    /// The window this request was sent in.
    epoch: u64,
}

impl Pacer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Says, while requests wait for the rate limit, until when (tokio's
    /// clock); `None` while they go.
    pub fn pauses(&self) -> watch::Receiver<Option<Instant>> {
        self.pause.subscribe()
    }

    /// What the pacer knows of the budget now.
    pub fn budget(&self) -> Budget {
        let w = self.lock();
        Budget {
            limit: w.limit,
            window: w.longest_reset,
            remaining: w.remaining,
            reset_at: w.reset_at,
        }
    }

    /// Waits until one more request fits in the window.
    pub async fn acquire(&self) -> Permit<'_> {
        let permit = self.wait_for_slot().await;
        // Requests go again: a pause told is over. Read first: nearly every
        // request finds none, and a read takes no write lock.
        if self.pause.borrow().is_some() {
            self.pause.send_if_modified(|until| until.take().is_some());
        }
        permit
    }

    async fn wait_for_slot(&self) -> Permit<'_> {
        loop {
            // Registered before the state is read, so no wake-up is missed.
            let changed = self.changed.notified();
            let deadline = {
                let mut w = self.lock();
                let now = Instant::now();
                match w.blocked_until {
                    Some(until) if until > now => Some(until),
                    _ => {
                        w.blocked_until = None;
                        if w.reset_at.is_some_and(|at| at <= now) {
                            // The window is over: the full limit is ours again
                            // until an answer says otherwise.
                            w.reset_at = None;
                            w.remaining = w.limit;
                            w.epoch += 1;
                        }
                        let epoch = w.epoch;
                        match w.remaining {
                            None if w.in_flight == 0 => {
                                w.in_flight += 1;
                                return Permit { pacer: self, epoch };
                            }
                            Some(n) if n > 0 => {
                                w.remaining = Some(n - 1);
                                w.in_flight += 1;
                                return Permit { pacer: self, epoch };
                            }
                            _ => w.reset_at,
                        }
                    }
                }
            };
            match deadline {
                Some(at) => {
                    if at.saturating_duration_since(Instant::now()) >= PAUSE_WORTH_TELLING {
                        self.pause.send_if_modified(|until| {
                            let told = *until == Some(at);
                            *until = Some(at);
                            !told
                        });
                    }
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Stops every request for `wait` (after a 429). The 429's wait is
    /// authoritative: when it is over, the window counts as reset.
    pub fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut w = self.lock();
        let until = w.blocked_until.map_or(until, |u| u.max(until));
        w.blocked_until = Some(until);
        w.remaining = Some(0);
        w.reset_at = Some(until);
        w.epoch += 1;
        drop(w);
        self.changed.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // A panic while holding this lock cannot leave the window inconsistent
        // (every update is a few assignments), so a poisoned lock is usable.
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Permit<'_> {
    /// Takes the budget from an answer's headers.
    pub fn observe(&self, headers: &RateHeaders) {
        let (Some(server_remaining), Some(reset)) = (headers.remaining, headers.reset) else {
            return;
        };
        let mut w = self.pacer.lock();
        if self.epoch != w.epoch {
            // Sent in a window that is over: it says nothing about this one.
            return;
        }
        if headers.limit.is_some() {
            w.limit = headers.limit;
        }
        w.longest_reset = w.longest_reset.max(Some(reset));
        let ends_by = Instant::now() + reset;
        let newer_window = w
            .reset_at
            .is_some_and(|at| ends_by > at + SAME_WINDOW_SLACK);
        if newer_window {
            // Calendly started a window we did not expect (the budget is
            // shared, or its windows are not what we assumed): start over from
            // its figures. Our other requests in flight may not be counted in
            // them yet.
            let others = w.in_flight.saturating_sub(1);
            w.remaining = Some(server_remaining.saturating_sub(others));
            w.reset_at = Some(ends_by);
            w.epoch += 1;
        } else {
            w.remaining = Some(
                w.remaining
                    .map_or(server_remaining, |r| r.min(server_remaining)),
            );
            w.reset_at = Some(w.reset_at.map_or(ends_by, |at| at.min(ends_by)));
        }
        drop(w);
        self.pacer.changed.notify_waiters();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut w = self.pacer.lock();
        w.in_flight = w.in_flight.saturating_sub(1);
        drop(w);
        self.pacer.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn reset_is_read_as_seconds_and_an_epoch_as_a_point_in_time() {
        let h = RateHeaders::parse(&headers(&[
            ("x-ratelimit-limit", "500"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "60"),
        ]));
        assert_eq!(h.limit, Some(500));
        assert_eq!(h.remaining, Some(0));
        assert_eq!(h.reset, Some(Duration::from_secs(60)));

        let in_30s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 30;
        let h = RateHeaders::parse(&headers(&[("x-ratelimit-reset", &in_30s.to_string())]));
        let reset = h.reset.unwrap();
        assert!(reset <= Duration::from_secs(30) && reset >= Duration::from_secs(28));
    }

    #[test]
    fn retry_after_wins_over_reset_and_accepts_an_http_date() {
        let h = RateHeaders::parse(&headers(&[
            ("retry-after", "7"),
            ("x-ratelimit-reset", "60"),
        ]));
        assert_eq!(h.wait_hint(), Some(Duration::from_secs(7)));
        let date = (chrono::Utc::now() + chrono::Duration::seconds(20)).to_rfc2822();
        let h = RateHeaders::parse(&headers(&[("retry-after", &date)]));
        assert!(h.wait_hint().unwrap() <= Duration::from_secs(20));
        let h = RateHeaders::parse(&headers(&[
            ("retry-after", "soon"),
            ("x-ratelimit-reset", "x"),
        ]));
        assert_eq!(h.wait_hint(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_window_holds_requests_until_it_resets() {
        let pacer = Pacer::new();
        let first = pacer.acquire().await;
        first.observe(&RateHeaders {
            limit: Some(2),
            remaining: Some(1),
            reset: Some(Duration::from_secs(10)),
            retry_after: None,
        });
        drop(first);
        let start = Instant::now();
        drop(pacer.acquire().await); // the one request left in this window
        drop(pacer.acquire().await); // waits for the reset
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(10), "waited {waited:?}");
        assert!(waited <= Duration::from_secs(12), "waited {waited:?}");
    }

    fn window(limit: u32, remaining: u32, reset_s: u64) -> RateHeaders {
        RateHeaders {
            limit: Some(limit),
            remaining: Some(remaining),
            reset: Some(Duration::from_secs(reset_s)),
            retry_after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_answer_narrows_the_window_end_and_the_earliest_bound_wins() {
        let pacer = Pacer::new();
        let start = Instant::now();
        let p = pacer.acquire().await;
        p.observe(&window(3, 2, 10)); // ends by 10 s
        drop(p);
        tokio::time::advance(Duration::from_millis(500)).await;
        let p = pacer.acquire().await;
        p.observe(&window(3, 1, 9)); // ends by 9.5 s: the tighter bound
        drop(p);
        tokio::time::advance(Duration::from_millis(300)).await;
        let p = pacer.acquire().await;
        p.observe(&window(3, 0, 10)); // ends by 10.8 s: looser, ignored
        drop(p);
        drop(pacer.acquire().await); // waits for the window to end
        assert_eq!(start.elapsed(), Duration::from_millis(9_500));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_are_not_counted_twice() {
        let pacer = Pacer::new();
        let first = pacer.acquire().await;
        first.observe(&window(10, 9, 10));
        drop(first);
        // Eight requests go out together; Calendly counts each as it arrives
        // and the answers come back while the others are still in flight.
        let mut flying = Vec::new();
        for _ in 0..8 {
            flying.push(pacer.acquire().await);
        }
        for (k, permit) in flying.iter().enumerate() {
            permit.observe(&window(10, 8 - k as u32, 10));
        }
        drop(flying);
        // One of the ten is left, at once; the eleventh waits for the window.
        let start = Instant::now();
        drop(pacer.acquire().await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        drop(pacer.acquire().await);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_from_a_window_that_is_over_is_ignored() {
        let pacer = Pacer::new();
        let first = pacer.acquire().await;
        first.observe(&window(5, 4, 1));
        drop(first);
        let late = pacer.acquire().await; // sent in the first window
        tokio::time::advance(Duration::from_secs(2)).await;
        let fresh = pacer.acquire().await; // the second window: 4 left after this
        // The late answer speaks of the first window's last request.
        late.observe(&window(5, 0, 1));
        drop((late, fresh));
        for _ in 0..4 {
            let p = tokio::time::timeout(Duration::from_millis(1), pacer.acquire()).await;
            assert!(p.is_ok(), "the stale answer emptied the new window");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_one_request_flies_before_the_limit_is_known() {
        let pacer = Pacer::new();
        let first = pacer.acquire().await;
        let second = tokio::time::timeout(Duration::from_secs(5), pacer.acquire()).await;
        assert!(second.is_err(), "a second permit was granted blind");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), pacer.acquire()).await;
        assert!(second.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_blocks_everyone_for_its_wait() {
        let pacer = Pacer::new();
        let p = pacer.acquire().await;
        p.observe(&RateHeaders {
            limit: Some(100),
            remaining: Some(99),
            reset: Some(Duration::from_secs(60)),
            retry_after: None,
        });
        drop(p);
        pacer.block_for(Duration::from_secs(30));
        let start = Instant::now();
        drop(pacer.acquire().await);
        assert!(start.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_the_window_is_told_until_requests_go_again() {
        let pacer = Pacer::new();
        let mut pauses = pacer.pauses();
        let p = pacer.acquire().await;
        p.observe(&window(10, 0, 20));
        drop(p);
        assert_eq!(*pauses.borrow_and_update(), None, "nothing waited yet");
        assert_eq!(pacer.budget().limit, Some(10));
        assert_eq!(pacer.budget().window, Some(Duration::from_secs(20)));

        let start = Instant::now();
        let waiting = tokio::spawn(async move {
            let pacer = pacer;
            drop(pacer.acquire().await);
            pacer
        });
        pauses.changed().await.unwrap();
        let until = pauses.borrow_and_update().expect("a pause is told");
        assert_eq!(until, start + Duration::from_secs(20));
        let pacer = waiting.await.unwrap();
        assert_eq!(*pacer.pauses().borrow(), None, "over once a request went");
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_wait_is_not_told() {
        let pacer = Pacer::new();
        let p = pacer.acquire().await;
        p.observe(&window(10, 0, 1));
        drop(p);
        let pauses = pacer.pauses();
        drop(pacer.acquire().await);
        assert!(!pauses.has_changed().unwrap(), "a 1 s wait stays quiet");
    }
}
