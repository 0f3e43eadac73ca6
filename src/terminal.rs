//! `calscan scan`: one scan in the terminal, through the same engine and
//! database as the server. A progress bar on a terminal, plain lines
//! otherwise, or the scan's events as NDJSON with `--json`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::calendly::CalendlyClient;
use crate::config::ScanArgs;
use crate::i18n::{Lang, Msg};
use crate::metrics::Metrics;
use crate::scan::status::{EventKind, StatusObject};
use crate::scan::{ScanMode, ScanSettings, Scans};
use crate::store::{ScanStatus, StartOutcome};

/// The scan completed.
pub const EXIT_COMPLETED: i32 = 0;
/// It failed, or ended otherwise than completed.
pub const EXIT_FAILED: i32 = 1;
/// Another scan runs on this database.
pub const EXIT_RUNNING: i32 = 3;
/// Cancelled with Ctrl-C (128 + SIGINT).
pub const EXIT_CANCELLED: i32 = 130;

/// Runs one scan to its end; returns the exit code.
pub async fn run(args: ScanArgs) -> anyhow::Result<i32> {
    let store = crate::store::connect_with(&args.database.database_url, &args.database.customers())
        .await
        .context("cannot open the database")?;
    let calendly = args
        .calendly
        .client_settings()
        .map(CalendlyClient::new)
        .transpose()
        .context("invalid Calendly settings")?;
    let shutdown = CancellationToken::new();
    let scans = Scans::new(
        store.clone(),
        calendly,
        ScanSettings {
            lang: args.lang,
            organization: args.calendly.calendly_org_uri.clone(),
            lease: crate::scan::DEFAULT_LEASE,
            // Read at once by one reader: it never falls far behind.
            stream_buffer: 1 << 16,
            lookback: Duration::from_secs(args.lookback_hours * 3600),
            db_outage: args.database.db_outage(),
            notify: None,
        },
        Metrics::new(),
        shutdown.clone(),
    );
    let mode = if args.full {
        ScanMode::Full
    } else {
        ScanMode::Incremental
    };
    let row = match scans.start(mode).await? {
        StartOutcome::Started(row) => row,
        StartOutcome::AlreadyRunning(running) => {
            eprintln!("calscan: a scan is already running on this database: {running}");
            return Ok(EXIT_RUNNING);
        }
    };
    let scan_id = row.scan_id.clone();
    // Subscribed before the database is read, as the event stream does: no
    // event falls in between, and none is shown twice.
    let live = scans.subscribe(&scan_id);
    let row = store.scan(&scan_id).await?.context("the scan vanished")?;
    let logs = store.logs_after(&scan_id, 0, i64::MAX).await?;
    let mut out = Output::new(args.json, args.lang);
    let snapshot = StatusObject::new(&row, Some(&logs), chrono::Utc::now(), args.lang);
    // A finished scan's newest id is its `done` event's, printed last.
    let finished = row.status != ScanStatus::Running;
    let snapshot_id = row.figures.last_event_id - i64::from(finished);
    out.snapshot(snapshot_id, &snapshot)?;
    let mut sent = snapshot_id;
    let mut interrupted = false;
    let done = match live {
        // Over before it could be followed (a refused token is quick): its
        // end is in the database, as for a stream of a finished scan.
        None => None,
        Some(_) if finished => None,
        Some(mut live) => {
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            loop {
                let event = tokio::select! {
                    _ = &mut ctrl_c, if !interrupted => {
                        interrupted = true;
                        out.note("Ctrl-C: the scan is cancelled and can be resumed");
                        scans.cancel(&scan_id).await?;
                        continue;
                    }
                    event = live.recv() => event,
                };
                match event {
                    Ok(batch) => {
                        let Some(batch) = batch.after(sent) else {
                            continue;
                        };
                        sent = batch.last_id();
                        let mut done = None;
                        for event in batch.events() {
                            let data = event.data(args.lang);
                            out.event(event.kind, event.id, &data)?;
                            if event.kind == EventKind::Done {
                                done = Some(data);
                            }
                        }
                        if done.is_some() {
                            break done;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Read back what was missed; the next event brings the figures.
                        for log in store.logs_after(&scan_id, sent, i64::MAX).await? {
                            sent = log.id;
                            let line = crate::scan::status::LogLine::new(&log, args.lang);
                            out.event(EventKind::Log, log.id, &serde_json::to_value(&line)?)?;
                        }
                    }
                    // The scan ended and its channel with it: the database has the end.
                    Err(RecvError::Closed) => break None,
                }
            }
        }
    };
    let done = match done {
        Some(done) => done,
        None => {
            let row = store.scan(&scan_id).await?.context("the scan vanished")?;
            anyhow::ensure!(
                row.status != ScanStatus::Running,
                "the scan stopped reporting but is still running"
            );
            for log in store.logs_after(&scan_id, sent, i64::MAX).await? {
                let line = crate::scan::status::LogLine::new(&log, args.lang);
                out.event(EventKind::Log, log.id, &serde_json::to_value(&line)?)?;
            }
            let status = StatusObject::new(&row, None, chrono::Utc::now(), args.lang);
            let data = serde_json::to_value(&status)?;
            out.event(EventKind::Done, row.figures.last_event_id, &data)?;
            data
        }
    };
    shutdown.cancel();
    scans.drain(Duration::from_secs(5)).await;
    out.finish();
    let status = done["status"].as_str().unwrap_or_default();
    Ok(match status {
        s if s == ScanStatus::Completed.as_str() => EXIT_COMPLETED,
        s if s == ScanStatus::Cancelled.as_str() && interrupted => EXIT_CANCELLED,
        _ => EXIT_FAILED,
    })
}

/// Where the scan's events go.
enum Output {
    /// One JSON object a line on stdout.
    Json,
    /// A progress bar on the terminal, or plain lines without one.
    Human {
        bar: ProgressBar,
        lang: Lang,
        /// The step last printed, when there is no bar.
        step: String,
    },
}

impl Output {
    fn new(json: bool, lang: Lang) -> Self {
        if json {
            return Self::Json;
        }
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:30}] {pos:>3} % · ETA {eta} · {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self::Human {
            bar,
            lang,
            step: String::new(),
        }
    }

    fn snapshot(&mut self, id: i64, status: &StatusObject) -> anyhow::Result<()> {
        let data = serde_json::to_value(status)?;
        match self {
            Self::Json => print_json("snapshot", id, &data),
            Self::Human { .. } => {
                for log in status.logs.iter().flatten() {
                    self.line(&log.message);
                }
                self.figures(&data);
                Ok(())
            }
        }
    }

    fn event(&mut self, kind: EventKind, id: i64, data: &Value) -> anyhow::Result<()> {
        match self {
            Self::Json => print_json(kind.as_str(), id, data),
            Self::Human { .. } => {
                match kind {
                    EventKind::Log => self.line(data["message"].as_str().unwrap_or_default()),
                    _ => self.figures(data),
                }
                Ok(())
            }
        }
    }

    /// A log line: above the bar, or on stdout.
    fn line(&self, text: &str) {
        if let Self::Human { bar, .. } = self {
            if bar.is_hidden() {
                println!("{text}");
            } else {
                bar.println(text);
            }
        }
    }

    fn note(&self, text: &str) {
        match self {
            Self::Json => eprintln!("calscan: {text}"),
            Self::Human { .. } => self.line(text),
        }
    }

    /// The bar's position and message; a plain line when the step changes.
    fn figures(&mut self, data: &Value) {
        let Self::Human { bar, lang, step } = self else {
            return;
        };
        let progress = data["progress"].as_u64().unwrap_or(0);
        let current = data["current_step"].as_str().unwrap_or_default();
        let total = data["events_total"]
            .as_i64()
            .map_or_else(|| "?".to_owned(), |t| t.to_string());
        let new = lang.text(&Msg::NewCount);
        let message = format!(
            "{current} · Events {}/{total} · Emails {} · {new} {}",
            data["events_scanned"], data["emails_found"], data["new_count"]
        );
        bar.set_position(progress);
        bar.set_message(message.clone());
        if bar.is_hidden() && current != step.as_str() {
            *step = current.to_owned();
            println!("[{progress:>3} %] {message}");
        }
    }

    fn finish(&self) {
        if let Self::Human { bar, .. } = self {
            bar.finish_and_clear();
        }
        let _ = std::io::stdout().flush();
    }
}

fn print_json(event: &str, id: i64, data: &Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(
        &mut stdout,
        &json!({"event": event, "id": id, "data": data}),
    )?;
    stdout.write_all(b"\n")?;
    Ok(())
}
