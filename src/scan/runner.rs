//! The scan task: loads every event, then each event's invitees, saving
//! customers event by event (the checkpoint), and reports every stage.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use tokio::sync::broadcast;

use super::progress::Reporter;
use super::status::Batch;
use super::status::StatusObject;
use super::work::Work;
use super::{Inner, ScanId, ScanMode};
use crate::calendly::model::Event;
use crate::calendly::{CalendlyError, EventInvitees};
use crate::i18n::{Msg, Texts};
use crate::notify::{Delivery, Notifier, Summary};
use crate::store::{Booking, Lease, Outage, ScanRow, ScanStatus, StoreError, StoreResult};

/// Why a scan stopped before completing.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Calendly(#[from] CalendlyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the scan's lease was lost")]
    LeaseLost,
    /// The database stayed away longer than `CALSCAN_DB_OUTAGE_S`.
    #[error("the database stayed away for {secs} s: {cause}")]
    DatabaseGone {
        outage: Outage,
        secs: u64,
        cause: StoreError,
    },
}

/// Runs the scan `row` (just started or resumed) to its end.
#[tracing::instrument(skip_all, fields(scan_id = %row.scan_id))]
pub(super) async fn run(
    inner: Arc<Inner>,
    row: ScanRow,
    resumed: bool,
    cancel: CancellationToken,
    channel: broadcast::Sender<Arc<Batch>>,
) {
    let scan_id = row.scan_id.clone();
    let mode = row.mode;
    let started_at = row.started_at;
    tracing::info!(mode = mode.as_str(), resumed, "scan started");
    let lost = CancellationToken::new();
    let own = channel.clone();
    let mut reporter = Reporter::start(
        &inner.journal,
        row,
        inner.instance.clone(),
        channel,
        lost.clone(),
    );
    let heartbeat = tokio::spawn(heartbeat(
        inner.clone(),
        scan_id.clone(),
        lost.clone(),
        cancel.clone(),
    ));

    let end = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(ScanStatus::Cancelled),
        _ = inner.shutdown.cancelled() => Err(ScanStatus::Interrupted),
        _ = lost.cancelled() => Err(ScanStatus::Interrupted),
        result = scan(&inner, &mut reporter, &scan_id, mode, resumed) => Ok(result),
    };
    heartbeat.abort();
    // How the scan ends, written once; `None` when it is not ours to end.
    let ending = match end {
        Ok(Ok(())) => Some((ScanStatus::Completed, None)),
        Err(status) if lost.is_cancelled() => {
            // Not ours any more: another process or the sweeper has it.
            tracing::warn!(%status, "scan stopped after losing its lease");
            None
        }
        Ok(Err(Failure::LeaseLost)) => {
            tracing::warn!("scan stopped after losing its lease");
            None
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "scan failed");
            let message = Texts::of(&match &error {
                Failure::Calendly(CalendlyError::NotConfigured) => Msg::NotConfigured,
                Failure::Calendly(error) => Msg::Calendly(error),
                Failure::DatabaseGone { outage, secs, .. } => Msg::DbGone {
                    backend: inner.store.backend(),
                    outage: *outage,
                    secs: *secs,
                },
                Failure::Store(error) => Msg::Database(error),
                // Handled above: a lost lease ends nothing.
                Failure::LeaseLost => Msg::Interrupted,
            });
            reporter.log(Msg::Failed { error: &message });
            reporter.stage(reporter.figures().progress, Msg::StepFailed);
            Some((ScanStatus::Error, Some(message)))
        }
        Err(status) => {
            let (line, step) = match status {
                ScanStatus::Cancelled => (Msg::Cancelled, Msg::StepCancelled),
                _ => (Msg::Interrupted, Msg::StepInterrupted),
            };
            reporter.log(line);
            reporter.stage(reporter.figures().progress, step);
            Some((status, None))
        }
    };
    if let Some((status, error)) = ending {
        let f = reporter.figures().clone();
        reporter.finish(status, error).await;
        let took = (Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
        tracing::info!(
            status = %status,
            events = f.events_scanned,
            emails = f.emails_found,
            new = f.new_count,
            existing = f.existing_count,
            duration_s = took,
            "scan ended"
        );
    }
    inner.registry.remove(&scan_id, &own);
    // Not held while a notification retries: the channel can close.
    drop(own);
    if let Some(notifier) = &inner.settings.notify {
        tokio::select! {
            // A notification still retrying does not hold up a shutdown.
            _ = inner.shutdown.cancelled() => {}
            _ = notify(&inner, notifier, &scan_id) => {}
        }
    }
}

/// Sends the summary of a scan that ended (completed, failed or was
/// cancelled; an interrupted scan has not ended) and logs how it went.
async fn notify(inner: &Inner, notifier: &Notifier, scan_id: &ScanId) {
    let row = match inner.store.scan(scan_id).await {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, %scan_id, "cannot read the scan to notify about it");
            return;
        }
    };
    if !matches!(
        row.status,
        ScanStatus::Completed | ScanStatus::Error | ScanStatus::Cancelled
    ) {
        return;
    }
    let status = StatusObject::new(
        &row,
        None,
        Utc::now(),
        (notifier.lang(), inner.settings.zone),
    );
    let summary = Summary::new(&status, notifier.public_url());
    let host = notifier.host();
    let line = match notifier.send(&summary).await {
        Delivery::Sent { status, attempts } => {
            tracing::info!(%scan_id, status, attempts, "notification sent");
            Texts::of(&Msg::NotifySent {
                host,
                status,
                attempts,
            })
        }
        Delivery::Failed { last, attempts } => {
            tracing::warn!(%scan_id, attempts, error = %last, "notification failed");
            Texts::of(&Msg::NotifyFailed {
                host,
                error: &last,
                attempts,
            })
        }
    };
    if let Err(error) = inner
        .store
        .append_to_finished(scan_id, &line, Utc::now())
        .await
    {
        tracing::warn!(%error, %scan_id, "cannot log the notification");
    }
}

/// Keeps the lease alive; cancels `lost` when the store says it is gone,
/// and `cancel` when someone asked, on any instance, that the scan stop.
async fn heartbeat(
    inner: Arc<Inner>,
    scan_id: ScanId,
    lost: CancellationToken,
    cancel: CancellationToken,
) {
    let lease = inner.settings.lease;
    let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(100)));
    tick.tick().await;
    loop {
        tick.tick().await;
        let until = crate::time::now_ms() + lease.as_millis() as i64;
        match inner
            .store
            .renew_lease(&scan_id, &inner.instance, until)
            .await
        {
            Ok(Lease::Held) => {}
            Ok(Lease::CancelRequested) => cancel.cancel(),
            Ok(Lease::Lost) => {
                lost.cancel();
                return;
            }
            // A passing database hiccup: the lease has slack for the next beat.
            Err(error) => tracing::warn!(%error, %scan_id, "cannot renew the scan's lease"),
        }
    }
}

/// The scan itself. Its steps are the original's, in its order; `progress`
/// follows the Calendly calls (see [`Work`]), and a wait for the rate limit
/// or the database is a step of its own.
async fn scan(
    inner: &Inner,
    reporter: &mut Reporter,
    scan_id: &ScanId,
    mode: ScanMode,
    resumed: bool,
) -> Result<(), Failure> {
    let started = Utc::now();
    reporter.update(|f| {
        f.current_step = Texts::of(&Msg::StepConnect);
        // An estimate an earlier run left says nothing about this one.
        f.eta_at_ms = None;
    });
    let client = inner
        .calendly
        .as_ref()
        .ok_or(CalendlyError::NotConfigured)?;
    let mut paced = RateWatch::new(client, inner.settings.zone);
    let usual_events = ride_out(inner, reporter, || inner.store.most_events_listed()).await?;
    let mut work = Work::new(usual_events.filter(|_| mode == ScanMode::Full));
    let organization = paced
        .wait_for(
            client.organization(inner.settings.organization.as_deref()),
            reporter,
        )
        .await?;
    work.connected();
    reporter.log(Msg::Connected {
        organization: &organization,
    });
    reporter.update(|f| f.progress = work.progress());

    let since = match mode {
        ScanMode::Full => None,
        ScanMode::Incremental => incremental_since(inner, reporter).await?,
    };
    let mut events: Vec<Event> = Vec::new();
    let mut pages = std::pin::pin!(client.events(&organization, since).enumerate());
    while let Some((page, result)) = paced.next(&mut pages, reporter).await {
        let batch = result?;
        let count = batch.len();
        events.extend(batch);
        reporter.log(Msg::EventsPage {
            page: page + 1,
            count,
            total: events.len(),
        });
        work.page(count as i64, count as i64 >= crate::calendly::PAGE_SIZE);
        let total = events.len() as i64;
        reporter.update(|f| {
            f.progress = work.progress();
            f.events_total = Some(total);
        });
    }
    let total = events.len() as i64;
    reporter.log(Msg::EventsLoaded {
        count: events.len(),
    });
    if since.is_some()
        && let Some(full_events) = usual_events
    {
        let saved = listing_calls(full_events) - listing_calls(total);
        if saved > 0 {
            reporter.log(Msg::CallsSaved { saved, full_events });
        }
    }
    reporter.stage(work.progress(), Msg::StepEventsLoaded);

    let done = ride_out(inner, reporter, || inner.store.done_events(scan_id)).await?;
    if resumed {
        reporter.log(Msg::Resumed { done: done.len() });
    }
    let remaining: Vec<Event> = events
        .into_iter()
        .filter(|e| !done.contains(&e.uri))
        .collect();
    let mut scanned = total - remaining.len() as i64;
    work.listed(total, scanned, tokio::time::Instant::now());
    let counts = ride_out(inner, reporter, || inner.store.email_counts(scan_id)).await?;
    reporter.update(|f| {
        f.events_total = Some(total);
        f.events_scanned = scanned;
        f.emails_found = counts.emails_found;
        f.new_count = counts.new_count;
        f.existing_count = counts.emails_found - counts.new_count;
    });
    reporter.stage(work.progress(), Msg::StepExtract);

    // The customers there are now, so that only emails not among them are
    // looked up in the table (which may be the school's, with no index
    // that fits a lookup by normalized email).
    let mut known = ride_out(inner, reporter, || inner.store.known_customers()).await?;
    let mut results = std::pin::pin!(client.invitees_of(remaining));
    while let Some(result) = paced.next(&mut results, reporter).await {
        let EventInvitees { event, invitees } = result?;
        let mut bookings = Vec::with_capacity(invitees.len());
        for invitee in &invitees {
            match Booking::of(invitee, &event.uri, event.start_time) {
                Some(booking) if !known.fits(&booking.email) => {
                    reporter.log(Msg::EmailTooLong {
                        email: &booking.email,
                        max: known.email_chars.unwrap_or_default(),
                    });
                }
                Some(booking) => bookings.push(known.mark(booking)),
                None => reporter.log(Msg::NoEmail {
                    name: invitee.display_name().as_deref().unwrap_or("?"),
                }),
            }
        }
        // Saved all at once or not at all, and once: tried again after an
        // outage, an event already saved adds nothing.
        let (added, waited) = ride_out_noting(inner, reporter, || {
            inner
                .store
                .record_event(scan_id, &inner.instance, &event.uri, &bookings, Utc::now())
        })
        .await?;
        let mut added = added.ok_or(Failure::LeaseLost)?;
        if waited {
            // A commit whose answer the connection lost may have saved the
            // event already: the database has the exact counts.
            let counts = ride_out(inner, reporter, || inner.store.email_counts(scan_id)).await?;
            let before = reporter.figures();
            added.emails_found = counts.emails_found - before.emails_found;
            added.new_count = counts.new_count - before.new_count;
        }
        if added.new_count > 0 {
            // This scan's rows are customers now: later lookups pass them over.
            let newer = ride_out(inner, reporter, || inner.store.customers_after(&known)).await?;
            known.add(newer);
        }
        scanned += 1;
        work.event_done();
        let now = tokio::time::Instant::now();
        let eta_at_ms = work
            .eta(&client.budget(), now)
            .map(|eta| crate::time::now_ms() + eta.as_millis() as i64);
        reporter.update(|f| {
            f.progress = work.progress();
            f.events_scanned = scanned;
            f.emails_found += added.emails_found;
            f.new_count += added.new_count;
            f.existing_count = f.emails_found - f.new_count;
            f.eta_at_ms = eta_at_ms;
        });
    }

    let f = reporter.figures().clone();
    reporter.log(Msg::UniqueEmails {
        count: f.emails_found,
    });
    reporter.stage(work.progress(), Msg::StepEmailsFound);
    reporter.stage(work.progress(), Msg::StepSave);
    reporter.log(Msg::Saved {
        new: f.new_count,
        existing: f.existing_count,
    });
    reporter.stage(work.progress(), Msg::StepFinish);
    let secs = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
    reporter.log(Msg::Completed {
        events: f.events_scanned,
        emails: f.emails_found,
        new: f.new_count,
        secs,
    });
    reporter.update(|f| {
        f.progress = 100;
        f.current_step = Texts::of(&Msg::StepDone);
        f.eta_at_ms = None;
    });
    Ok(())
}

/// How often the step of a scan waiting for Calendly's rate limit counts
/// down.
const RATE_WAIT_TOLD_EVERY: Duration = Duration::from_secs(5);

/// Tells the scan's watchers while Calendly's rate limit holds its calls
/// up: a log line when a wait begins, and a step of its own that counts down
/// to the window's end, until the calls go again.
struct RateWatch {
    pauses: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
    zone: crate::time::Zone,
    /// While waiting: until when, and the step before the wait.
    waiting: Option<(tokio::time::Instant, Texts)>,
}

impl RateWatch {
    fn new(client: &crate::calendly::CalendlyClient, zone: crate::time::Zone) -> Self {
        Self {
            pauses: client.rate_pauses(),
            zone,
            waiting: None,
        }
    }

    /// The next item of `stream`, telling of every wait on the way.
    async fn next<S: futures::Stream + Unpin>(
        &mut self,
        stream: &mut S,
        reporter: &mut Reporter,
    ) -> Option<S::Item> {
        self.wait_for(stream.next(), reporter).await
    }

    /// `call`'s answer, telling of every wait on the way.
    async fn wait_for<T>(
        &mut self,
        call: impl std::future::Future<Output = T>,
        reporter: &mut Reporter,
    ) -> T {
        let mut call = std::pin::pin!(call);
        loop {
            let countdown = async {
                match self.waiting {
                    Some(_) => tokio::time::sleep(RATE_WAIT_TOLD_EVERY).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                answer = &mut call => return answer,
                Ok(()) = self.pauses.changed() => {
                    let until = *self.pauses.borrow_and_update();
                    self.told(until, reporter);
                }
                () = countdown => self.count_down(reporter),
            }
        }
    }

    fn told(&mut self, until: Option<tokio::time::Instant>, reporter: &mut Reporter) {
        match (until, self.waiting.take()) {
            (Some(until), before) => {
                if before.is_none() {
                    let (at, secs) = self.when(until);
                    tracing::info!(wait_s = secs, "the scan waits for Calendly's rate limit");
                    reporter.log(Msg::RateWait { at: &at, secs });
                }
                let step =
                    before.map_or_else(|| reporter.figures().current_step.clone(), |(_, s)| s);
                self.waiting = Some((until, step));
                self.count_down(reporter);
            }
            (None, Some((_, step))) => reporter.update(|f| f.current_step = step),
            (None, None) => {}
        }
    }

    fn count_down(&self, reporter: &mut Reporter) {
        if let Some((until, _)) = &self.waiting {
            let (at, secs) = self.when(*until);
            reporter.update(|f| f.current_step = Texts::of(&Msg::RateWait { at: &at, secs }));
        }
    }

    /// The wall-clock time `until` is, in the school's zone, and the
    /// seconds to it (rounded up).
    fn when(&self, until: tokio::time::Instant) -> (String, u64) {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let at = Utc::now() + chrono::Duration::from_std(left).unwrap_or_default();
        (self.zone.clock(at), left.as_millis().div_ceil(1000) as u64)
    }
}

/// Where an incremental scan starts reading events: the last completed
/// scan's start minus the look-back; `None` (every event) when no scan has
/// completed yet. Says which in the log.
async fn incremental_since(
    inner: &Inner,
    reporter: &mut Reporter,
) -> Result<Option<DateTime<Utc>>, Failure> {
    let Some(last) = ride_out(inner, reporter, || inner.store.last_completed()).await? else {
        reporter.log(Msg::IncrementalFirst);
        return Ok(None);
    };
    let previous = last.started_at.timestamp_millis();
    reporter.update(|f| f.previous_scan_ms = Some(previous));
    let lookback = inner.settings.lookback;
    let Some(since) = chrono::Duration::from_std(lookback)
        .ok()
        .and_then(|d| last.started_at.checked_sub_signed(d))
    else {
        // Unreachable with the look-back the settings allow (at most ten
        // years); reading every event is the safe answer.
        reporter.log(Msg::IncrementalFirst);
        return Ok(None);
    };
    reporter.log(Msg::IncrementalSince {
        since,
        zone: inner.settings.zone,
        lookback_hours: lookback.as_secs() / 3600,
    });
    Ok(Some(since))
}

/// How often the step of a scan waiting for the database says for how long.
const WAIT_TOLD_EVERY: Duration = Duration::from_secs(5);

/// Runs `op` (one unit of work of the store) until it succeeds, waiting
/// out a database that is away: the step and a log line say so, the step
/// counts the seconds, and once the database answers the scan says so and
/// goes on where it was. Past `CALSCAN_DB_OUTAGE_S` the scan gives up with
/// [`Failure::DatabaseGone`]; a statement the database refused fails at once.
async fn ride_out<T, F, Fut>(inner: &Inner, reporter: &mut Reporter, op: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    Ok(ride_out_noting(inner, reporter, op).await?.0)
}

/// [`ride_out`], saying whether it waited.
async fn ride_out_noting<T, F, Fut>(
    inner: &Inner,
    reporter: &mut Reporter,
    mut op: F,
) -> Result<(T, bool), Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut away: Option<(std::time::Instant, crate::i18n::Texts)> = None;
    let mut told = std::time::Instant::now();
    let mut pause = super::progress::RETRY_FIRST;
    loop {
        let error = match crate::store::answer_within(op()).await {
            Ok(value) => {
                if let Some((since, step)) = away {
                    let secs = since.elapsed().as_secs();
                    tracing::info!(away_s = secs, "the database is back; the scan goes on");
                    reporter.log(Msg::DbBack { secs });
                    reporter.update(|f| f.current_step = step);
                    return Ok((value, true));
                }
                return Ok((value, false));
            }
            Err(error) => error,
        };
        let Some(outage) = error.outage() else {
            return Err(error.into());
        };
        let (since, _) = away.get_or_insert_with(|| {
            tracing::warn!(%error, "the database is away; the scan waits");
            let step = reporter.figures().current_step.clone();
            reporter.log(Msg::DbWaiting { secs: 0 });
            reporter.stage(reporter.figures().progress, Msg::DbWaiting { secs: 0 });
            told = std::time::Instant::now();
            (std::time::Instant::now(), step)
        });
        let waited = since.elapsed();
        if waited >= inner.settings.db_outage {
            return Err(Failure::DatabaseGone {
                outage,
                secs: waited.as_secs(),
                cause: error,
            });
        }
        if told.elapsed() >= WAIT_TOLD_EVERY {
            told = std::time::Instant::now();
            let secs = waited.as_secs();
            reporter.stage(reporter.figures().progress, Msg::DbWaiting { secs });
        }
        tokio::time::sleep(pause.min(inner.settings.db_outage - waited)).await;
        pause = (pause * 2).min(super::progress::RETRY_MAX);
    }
}

/// The Calendly calls listing `events` events takes at the least: one
/// invitee listing each, and the event pages.
fn listing_calls(events: i64) -> i64 {
    events + events / crate::calendly::PAGE_SIZE + 1
}
