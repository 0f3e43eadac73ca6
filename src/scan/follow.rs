//! Following a scan: the one place that turns a scan's channel and its
//! rows into a stream of events, for the event stream and the terminal.
//!
//! A follower subscribes to the scan's channel first and reads the database
//! second, so nothing falls between the two: the snapshot carries every
//! log line after the follower's last event id up to the scan's newest
//! event id, and live events at or below that id are skipped. A follower
//! that falls behind the channel is refilled from the database; a scan
//! running in another process is followed by reading the database. The
//! stream ends with the scan's `done`, or early if the database cannot be
//! read (the follower then comes back with its last event id).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use futures::Stream;
use futures::stream::BoxStream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::status::{Batch, EventKind, Published, StatusObject};
use super::{ScanId, Scans};
use crate::store::{LogRow, ScanRow, ScanStatus, StoreResult};
use crate::time::Zone;

/// A status object carries at most this many log lines.
pub const LOG_LIMIT: i64 = 10_000;
/// How often a scan running elsewhere is re-read where no wake-ups come
/// (SQLite, MySQL).
const POLL: Duration = Duration::from_millis(500);
/// How often it is re-read anyway where wake-ups come (PostgreSQL): a
/// wake-up lost with a dropped connection is late by at most this.
const POLL_WOKEN: Duration = Duration::from_secs(5);
/// Log lines read back per refill.
const REFILL_LIMIT: i64 = 100_000;
/// Events of a refill sent as one batch (one write).
const REFILL_BATCH: usize = 1_000;

/// What following a scan gives.
pub enum Following {
    /// There is no such scan.
    Unknown,
    /// The scan has finished and the follower has every event, its `done`
    /// included.
    UpToDate,
    /// The `snapshot`, then every later event once, ending with `done`.
    Events(BoxStream<'static, Arc<Batch>>),
}

impl std::fmt::Debug for Following {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unknown => "Unknown",
            Self::UpToDate => "UpToDate",
            Self::Events(_) => "Events(..)",
        })
    }
}

impl Scans {
    /// Follows `scan_id` from after the event `after` (none: from the start).
    pub async fn follow(&self, scan_id: &ScanId, after: Option<i64>) -> StoreResult<Following> {
        // Subscribed before the row is read: no event can fall in between.
        let live = self.inner.registry.subscribe(scan_id);
        let Some(row) = self.inner.store.scan(scan_id).await? else {
            return Ok(Following::Unknown);
        };
        let finished = row.status != ScanStatus::Running;
        if finished && after.is_some_and(|n| n >= row.figures.last_event_id) {
            return Ok(Following::UpToDate);
        }
        let logs = self.logs(&row, after.unwrap_or(0)).await?;
        // A finished scan's newest id is its `done` event's, sent right after.
        let snapshot_id = row.figures.last_event_id - i64::from(finished);
        let now = Utc::now();
        let snapshot = Published::new(snapshot_id, EventKind::Snapshot, |lang| {
            StatusObject::new(&row, Some(&logs), now, (lang, self.inner.settings.zone))
        });
        Ok(Following::Events(Box::pin(
            self.clone().events(row, snapshot, live),
        )))
    }

    /// The scan's log lines after `after`, at most [`LOG_LIMIT`], up to the
    /// row's newest event id.
    pub async fn logs(&self, row: &ScanRow, after: i64) -> StoreResult<Vec<LogRow>> {
        // Read after the row: lines past its newest id belong to a later state.
        let mut logs = self
            .inner
            .store
            .logs_after(&row.scan_id, after, LOG_LIMIT)
            .await?;
        logs.retain(|log| log.id <= row.figures.last_event_id);
        Ok(logs)
    }

    fn events(
        self,
        row: ScanRow,
        snapshot: Published,
        live: Option<Receiver<Arc<Batch>>>,
    ) -> impl Stream<Item = Arc<Batch>> {
        async_stream::stream! {
            let mut sent = snapshot.id;
            yield Arc::new(Batch::one(snapshot));
            if row.status != ScanStatus::Running {
                yield Arc::new(Batch::one(done(&row, self.inner.settings.zone)));
                return;
            }
            let Some(mut live) = live else {
                // Running in another process.
                for await batch in self.poll(row.scan_id.clone(), sent) {
                    yield batch;
                }
                return;
            };
            loop {
                match live.recv().await {
                    Ok(batch) => {
                        let Some(batch) = batch.after(sent) else {
                            continue;
                        };
                        sent = batch.last_id();
                        let last = batch.ends();
                        yield batch;
                        if last {
                            return;
                        }
                    }
                    // Fell behind the channel: the database has the gap.
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(scan_id = %row.scan_id, skipped, sent, "stream refilled from the database");
                        let Some((batches, newest, finished)) = self.refill(&row.scan_id, sent).await else {
                            return;
                        };
                        for batch in batches {
                            yield batch;
                        }
                        sent = newest;
                        if finished {
                            return;
                        }
                    }
                    // The scan task is gone without a done we saw: follow the database.
                    Err(RecvError::Closed) => {
                        for await batch in self.poll(row.scan_id.clone(), sent) {
                            yield batch;
                        }
                        return;
                    }
                }
            }
        }
    }

    /// Follows a scan that runs elsewhere by re-reading the database: when
    /// its instance announces new events, and every so often in any case.
    fn poll(&self, scan_id: ScanId, mut sent: i64) -> impl Stream<Item = Arc<Batch>> + use<> {
        let scans = self.clone();
        async_stream::stream! {
            // Watched before the first read: no announcement falls in between.
            let mut woken = scans.inner.registry.watch_elsewhere(&scan_id);
            let period = if scans.inner.wakeups.load(Ordering::Relaxed) {
                POLL_WOKEN
            } else {
                POLL
            };
            loop {
                let Some((batches, newest, finished)) = scans.refill(&scan_id, sent).await else {
                    return;
                };
                for batch in batches {
                    yield batch;
                }
                sent = newest;
                if finished {
                    return;
                }
                // An announcement during the read above wakes this at once.
                let _ = tokio::time::timeout(period, woken.changed()).await;
            }
        }
    }

    /// [`Self::catch_up`] in batches of [`REFILL_BATCH`] events, logging a
    /// failure (the stream then ends).
    async fn refill(&self, scan_id: &ScanId, sent: i64) -> Option<(Vec<Arc<Batch>>, i64, bool)> {
        let (events, newest, finished) = self
            .catch_up(scan_id, sent)
            .await
            .inspect_err(
                |error| tracing::warn!(%error, %scan_id, "cannot read a scan's events back"),
            )
            .ok()?;
        let batches = events
            .chunks(REFILL_BATCH)
            .filter_map(|chunk| Batch::new(chunk.to_vec()))
            .map(Arc::new)
            .collect();
        Some((batches, newest, finished))
    }

    /// What the database holds after `sent`: log lines, then the newest
    /// progress (or `done`). Returns the events, the newest id, and whether
    /// the scan has finished.
    async fn catch_up(
        &self,
        scan_id: &ScanId,
        sent: i64,
    ) -> StoreResult<(Vec<Published>, i64, bool)> {
        let store = &self.inner.store;
        let zone = self.inner.settings.zone;
        // The row first: every log line up to its newest id is already written.
        let row = store.scan(scan_id).await?.ok_or_else(|| {
            crate::store::StoreError::Corrupt(format!("the scan {scan_id} vanished"))
        })?;
        let newest = row.figures.last_event_id;
        let mut events: Vec<Published> = store
            .logs_after(scan_id, sent, REFILL_LIMIT)
            .await?
            .iter()
            .filter(|log| log.id <= newest)
            .map(Published::log)
            .collect();
        let finished = row.status != ScanStatus::Running;
        if finished {
            events.push(done(&row, zone));
        } else if newest > sent && events.last().is_none_or(|e| e.id < newest) {
            events.push(Published::status(
                newest,
                EventKind::Progress,
                &row,
                Utc::now(),
                zone,
            ));
        }
        Ok((events, newest.max(sent), finished))
    }
}

fn done(row: &ScanRow, zone: Zone) -> Published {
    Published::status(
        row.figures.last_event_id,
        EventKind::Done,
        row,
        Utc::now(),
        zone,
    )
}
