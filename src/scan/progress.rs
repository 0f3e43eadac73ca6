//! Write-through progress: every change a scan makes is written once to the
//! store and then published to its watchers, in id order.
//!
//! A scan task never waits for the database to report progress: it hands
//! changes to the [`Journal`], the one writer of the process, which takes
//! whatever has queued up from every scan, writes it in one transaction
//! (group commit) and then publishes it. Idle, a change is out in about a
//! millisecond; under load, lines and scans batch themselves. Publishing
//! only after the write means a watcher who reconnects finds in the database
//! everything it may have missed live.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::status::{Batch, EventKind, Published};
use crate::i18n::{Msg, Texts};
use crate::metrics::Metrics;
use crate::store::{Finish, LogRow, Progress, ScanRow, ScanStatus, ScanWrite, Store, StoreResult};
use crate::time::Zone;

/// At most this many queued changes, of all scans, go into one transaction.
const MAX_BATCH: usize = 1_000;

enum Change {
    Log(LogRow),
    /// New figures, under their own event id (`last_event_id`).
    Figures(Progress),
    Finish {
        status: ScanStatus,
        error: Option<Texts>,
        done_id: i64,
    },
}

/// The scan task's side: assigns event ids and queues changes.
#[derive(Debug)]
pub struct Reporter {
    key: u64,
    journal: Journal,
    figures: Progress,
    /// Answers when the scan's end is written and published (or the
    /// journal gave the scan up).
    finished: oneshot::Receiver<()>,
}

/// The process's one writer of scan progress; cheap to clone.
#[derive(Debug, Clone)]
pub struct Journal {
    sender: mpsc::UnboundedSender<Message>,
    next_key: Arc<AtomicU64>,
}

enum Message {
    Open(Box<Open>),
    Change(u64, Change),
    /// The reporter is gone: once its changes are written, the scan's
    /// channel closes, so its watchers follow the database to the end.
    Close(u64),
}

/// A scan the journal writes for.
struct Open {
    key: u64,
    row: ScanRow,
    owner: String,
    channel: broadcast::Sender<Arc<Batch>>,
    lost: CancellationToken,
    finished: oneshot::Sender<()>,
}

impl Journal {
    /// Starts the writer task; it ends when the last clone and reporter are gone.
    /// Its status events name times in `zone`.
    pub fn start(store: Arc<dyn Store>, metrics: Metrics, zone: Zone) -> Self {
        let (sender, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(store, queue, metrics, zone));
        Self {
            sender,
            next_key: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Log(_) => "Log",
            Change::Figures(_) => "Figures",
            Change::Finish { .. } => "Finish",
        })
    }
}

impl Reporter {
    /// Reports for `row`, a scan `owner` holds, through `journal`. `lost` is
    /// cancelled when the store refuses a write (the lease is gone).
    pub fn start(
        journal: &Journal,
        row: ScanRow,
        owner: String,
        channel: broadcast::Sender<Arc<Batch>>,
        lost: CancellationToken,
    ) -> Self {
        let key = journal.next_key.fetch_add(1, Ordering::Relaxed);
        let (done, finished) = oneshot::channel();
        let figures = row.figures.clone();
        // The writer outlives every sender; a send fails only after it gave up.
        let _ = journal.sender.send(Message::Open(Box::new(Open {
            key,
            row,
            owner,
            channel,
            lost,
            finished: done,
        })));
        Self {
            key,
            journal: journal.clone(),
            figures,
            finished,
        }
    }

    fn send(&self, change: Change) {
        let _ = self.journal.sender.send(Message::Change(self.key, change));
    }

    pub fn figures(&self) -> &Progress {
        &self.figures
    }

    fn next_id(&mut self) -> i64 {
        self.figures.last_event_id += 1;
        self.figures.last_event_id
    }

    /// Appends a log line.
    pub fn log(&mut self, msg: Msg<'_>) {
        self.line(Texts::of(&msg));
    }

    /// Appends a log line of given text.
    pub fn line(&mut self, message: Texts) {
        let line = LogRow {
            id: self.next_id(),
            message,
            created_at: Utc::now(),
        };
        self.send(Change::Log(line));
    }

    /// Changes the figures; publishes them if anything changed. Progress
    /// never goes down.
    pub fn update(&mut self, change: impl FnOnce(&mut Progress)) {
        let before = self.figures.clone();
        change(&mut self.figures);
        self.figures.progress = self.figures.progress.clamp(before.progress, 100);
        self.figures.last_event_id = before.last_event_id;
        if self.figures != before {
            self.next_id();
            self.send(Change::Figures(self.figures.clone()));
        }
    }

    /// Moves to a stage: its progress and step.
    pub fn stage(&mut self, progress: i64, step: Msg<'_>) {
        let step = Texts::of(&step);
        self.update(|f| {
            f.progress = progress;
            f.current_step = step;
        });
    }

    /// Ends the scan with `status`, waits until it is written and published.
    pub async fn finish(mut self, status: ScanStatus, error: Option<Texts>) {
        let done_id = self.next_id();
        self.send(Change::Finish {
            status,
            error,
            done_id,
        });
        let _ = (&mut self.finished).await;
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let _ = self.journal.sender.send(Message::Close(self.key));
    }
}

/// One scan's changes in a batch, folded: its lines, its newest figures,
/// its end.
#[derive(Default)]
struct Pending {
    logs: Vec<LogRow>,
    figures: Option<Progress>,
    finish: Option<(ScanStatus, Option<Texts>, i64)>,
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut queue: mpsc::UnboundedReceiver<Message>,
    metrics: Metrics,
    zone: Zone,
) {
    let mut scans: HashMap<u64, Open> = HashMap::new();
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Each scan's changes, scans in the order they first changed.
        let mut order: Vec<u64> = Vec::new();
        let mut pending: HashMap<u64, Pending> = HashMap::new();
        let mut closed: Vec<u64> = Vec::new();
        for message in batch.drain(..) {
            let (key, change) = match message {
                Message::Open(open) => {
                    scans.insert(open.key, *open);
                    continue;
                }
                Message::Close(key) => {
                    closed.push(key);
                    continue;
                }
                Message::Change(key, change) => (key, change),
            };
            let p = pending.entry(key).or_insert_with(|| {
                order.push(key);
                Pending::default()
            });
            match change {
                Change::Log(line) => p.logs.push(line),
                Change::Figures(f) => p.figures = Some(f),
                Change::Finish {
                    status,
                    error,
                    done_id,
                } => p.finish = Some((status, error, done_id)),
            }
        }
        // A scan the journal gave up has nobody left to write for.
        order.retain(|key| scans.contains_key(key) && pending.contains_key(key));
        for key in &order {
            let (Some(scan), Some(p)) = (scans.get_mut(key), pending.get(key)) else {
                continue;
            };
            if let Some(f) = &p.figures {
                scan.row.figures = f.clone();
            }
            let newest = [
                p.logs.last().map(|l| l.id),
                p.figures.as_ref().map(|f| f.last_event_id),
                p.finish.as_ref().map(|f| f.2),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(scan.row.figures.last_event_id);
            scan.row.figures.last_event_id = scan.row.figures.last_event_id.max(newest);
        }

        let now = Utc::now();
        // `order` holds only keys of both maps (retained above).
        let writes: Vec<ScanWrite<'_>> = order
            .iter()
            .filter_map(|key| Some((scans.get(key)?, pending.get(key)?)))
            .map(|(scan, p)| ScanWrite {
                scan_id: &scan.row.scan_id,
                owner: &scan.owner,
                figures: &scan.row.figures,
                logs: &p.logs,
                finish: p.finish.as_ref().map(|(status, error, _)| Finish {
                    status: *status,
                    error_message: error.as_ref(),
                    completed_at: now,
                }),
            })
            .collect();
        let writing = std::time::Instant::now();
        let written = write_riding_out(&*store, &writes).await;
        metrics.progress_written(writing.elapsed().as_secs_f64());
        drop(writes);
        let held = match written {
            Ok(held) => held,
            Err(error) => {
                tracing::error!(%error, scans = order.len(), "cannot write scan progress; the scans stop");
                vec![false; order.len()]
            }
        };

        for (key, held) in order.iter().zip(held) {
            let p = pending.remove(key).unwrap_or_default();
            if !held {
                if let Some(scan) = scans.remove(key) {
                    tracing::warn!(scan_id = %scan.row.scan_id, "lost the scan's lease; it stops without writing");
                    scan.lost.cancel();
                }
                continue;
            }
            let Some(scan) = scans.get_mut(key) else {
                continue;
            };
            metrics.log_lines_written(p.logs.len() as u64);
            // Published in id order, only after the write.
            let mut events: Vec<Published> = p.logs.iter().map(Published::log).collect();
            if let Some(f) = &p.figures {
                events.push(Published::status(
                    f.last_event_id,
                    EventKind::Progress,
                    &scan.row,
                    now,
                    zone,
                ));
            }
            let finished = p.finish.is_some();
            if let Some((status, error, done_id)) = p.finish {
                let took = (now - scan.row.started_at).num_milliseconds() as f64 / 1000.0;
                metrics.scan_ended(status.as_str(), took);
                scan.row.status = status;
                scan.row.error_message = error;
                scan.row.completed_at = Some(now);
                events.push(Published::status(
                    done_id,
                    EventKind::Done,
                    &scan.row,
                    now,
                    zone,
                ));
            }
            events.sort_by_key(|e| e.id);
            // One batch: what this write made public, in one slot of the
            // channel. No watcher is not an error.
            if let Some(batch) = Batch::new(events) {
                let _ = scan.channel.send(Arc::new(batch));
            }
            if finished && let Some(scan) = scans.remove(key) {
                let _ = scan.finished.send(());
            }
        }
        for key in closed {
            scans.remove(&key);
        }
    }
}

/// Writes `writes`, trying again while the database is away: nothing is
/// published before it is written, and the scans wait (they say so
/// themselves, see `runner::ride_out`). A statement the database refused
/// is not tried again.
async fn write_riding_out(store: &dyn Store, writes: &[ScanWrite<'_>]) -> StoreResult<Vec<bool>> {
    let mut away: Option<std::time::Instant> = None;
    let mut pause = RETRY_FIRST;
    loop {
        match crate::store::answer_within(store.write_scans(writes)).await {
            Err(error) if error.is_unavailable() => {
                let since = *away.get_or_insert_with(|| {
                    tracing::warn!(%error, "cannot write scan progress; trying again until the database is back");
                    std::time::Instant::now()
                });
                tracing::debug!(%error, away_s = since.elapsed().as_secs(), "scan progress not written yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
            result => {
                if let Some(since) = away {
                    tracing::info!(
                        away_s = since.elapsed().as_secs(),
                        "scan progress written again"
                    );
                }
                return result;
            }
        }
    }
}

/// The first pause before a write is tried again, and the longest.
pub(crate) const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
pub(crate) const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(2);
