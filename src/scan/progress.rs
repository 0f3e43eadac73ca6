//! Write-through progress: every change a scan makes is written once to the
//! store and then published to its watchers, in id order.
//!
//! The scan task never waits for the database to report progress: it hands
//! changes to a writer task, which takes whatever has queued up, writes it in
//! one transaction and publishes it. Idle, a change is out in about a
//! millisecond; under load, lines batch themselves. Publishing only after
//! the write means a watcher who reconnects finds in the database everything
//! it may have missed live.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::status::{EventKind, Published};
use crate::i18n::{Lang, Msg, Texts};
use crate::store::{LogRow, Progress, ScanRow, ScanStatus, Store};

/// At most this many queued changes go into one transaction.
const MAX_BATCH: usize = 1_000;

enum Change {
    Log(LogRow),
    /// New figures, under their own event id (`last_event_id`).
    Figures(Progress),
    Finish {
        status: ScanStatus,
        error: Option<String>,
        done_id: i64,
    },
}

/// The scan task's side: assigns event ids and queues changes.
#[derive(Debug)]
pub struct Reporter {
    changes: mpsc::UnboundedSender<Change>,
    writer: JoinHandle<()>,
    figures: Progress,
    lang: Lang,
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
    /// Starts the writer for `row`, a scan `owner` holds. `lost` is
    /// cancelled when the store refuses a write (the lease is gone).
    pub fn start(
        store: Arc<dyn Store>,
        row: ScanRow,
        owner: String,
        lang: Lang,
        channel: broadcast::Sender<Arc<Published>>,
        lost: CancellationToken,
    ) -> Self {
        let (changes, queue) = mpsc::unbounded_channel();
        let figures = row.figures.clone();
        let writer = tokio::spawn(write_loop(store, row, owner, queue, channel, lost));
        Self {
            changes,
            writer,
            figures,
            lang,
        }
    }

    pub fn lang(&self) -> Lang {
        self.lang
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
        let line = LogRow {
            id: self.next_id(),
            message: Texts::of(&msg),
            created_at: Utc::now(),
        };
        // The writer outlives every sender; a send fails only after it gave up.
        let _ = self.changes.send(Change::Log(line));
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
            let _ = self.changes.send(Change::Figures(self.figures.clone()));
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
    pub async fn finish(mut self, status: ScanStatus, error: Option<String>) {
        let done_id = self.next_id();
        let _ = self.changes.send(Change::Finish {
            status,
            error,
            done_id,
        });
        drop(self.changes);
        let _ = self.writer.await;
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut row: ScanRow,
    owner: String,
    mut queue: mpsc::UnboundedReceiver<Change>,
    channel: broadcast::Sender<Arc<Published>>,
    lost: CancellationToken,
) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut logs = Vec::new();
        let mut figures: Option<Progress> = None;
        let mut finish = None;
        for change in batch.drain(..) {
            match change {
                Change::Log(line) => logs.push(line),
                Change::Figures(f) => figures = Some(f),
                Change::Finish {
                    status,
                    error,
                    done_id,
                } => finish = Some((status, error, done_id)),
            }
        }
        let progress_id = figures.as_ref().map(|f| f.last_event_id);
        if let Some(f) = figures {
            row.figures = f;
        }
        let newest = [
            logs.last().map(|l| l.id),
            progress_id,
            finish.as_ref().map(|f| f.2),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(row.figures.last_event_id);
        row.figures.last_event_id = row.figures.last_event_id.max(newest);

        let now = Utc::now();
        let written = match &finish {
            Some((status, error, _)) => {
                store
                    .finish_scan(
                        &row.scan_id,
                        &owner,
                        *status,
                        error.as_deref(),
                        &row.figures,
                        &logs,
                        now,
                    )
                    .await
            }
            None => {
                store
                    .write_progress(&row.scan_id, &owner, &row.figures, &logs)
                    .await
            }
        };
        match written {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(scan_id = %row.scan_id, "lost the scan's lease; it stops without writing");
                lost.cancel();
                return;
            }
            Err(error) => {
                tracing::error!(scan_id = %row.scan_id, %error, "cannot write the scan's progress; it stops");
                lost.cancel();
                return;
            }
        }

        // Published in id order, only after the write.
        let mut events: Vec<Published> = logs.iter().map(Published::log).collect();
        if let Some(id) = progress_id {
            events.push(Published::status(id, EventKind::Progress, &row, now));
        }
        if let Some((status, error, done_id)) = finish {
            row.status = status;
            row.error_message = error;
            row.completed_at = Some(now);
            events.push(Published::status(done_id, EventKind::Done, &row, now));
        }
        events.sort_by_key(|e| e.id);
        for event in events {
            // No watcher is not an error.
            let _ = channel.send(Arc::new(event));
        }
        if row.completed_at.is_some() {
            return;
        }
    }
}
