//! `calscan scan`: one scan in the terminal, through the same engine and
//! database as the server. A progress bar on a terminal, plain lines
//! otherwise, or the scan's events as NDJSON with `--json`. With `--resume`
//! it continues a scan that stopped, as `POST /api/scans/{id}/resume` does.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::calendly::CalendlyClient;
use crate::config::ScanArgs;
use crate::i18n::{Lang, Msg};
use crate::metrics::Metrics;
use crate::scan::status::EventKind;
use crate::scan::{Following, ScanId, ScanMode, Scans};
use crate::store::{ResumeOutcome, ScanStatus, StartOutcome};

/// The scan completed.
pub const EXIT_COMPLETED: i32 = 0;
/// It failed, or ended otherwise than completed.
pub const EXIT_FAILED: i32 = 1;
/// Another scan runs on this database.
pub const EXIT_RUNNING: i32 = 3;
/// Cancelled with Ctrl-C (128 + SIGINT).
pub const EXIT_CANCELLED: i32 = 130;

/// How often a status line is printed when stdout is not a terminal, so
/// that whoever collects it sees the scan is alive.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Runs one scan to its end; returns the exit code.
pub async fn run(args: ScanArgs) -> anyhow::Result<i32> {
    let lang = args.lang;
    // A malformed id is refused before the database is even opened.
    let resume = match &args.resume {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => match ScanId::parse(text.as_str()) {
            Ok(id) => Some(Some(id)),
            Err(_) => return Ok(refuse(lang, &Msg::ResumeBadId { id: text })),
        },
    };
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
        args.scan_settings(),
        Metrics::new(),
        shutdown.clone(),
    );
    let scan_id = match resume {
        Some(id) => match resume_scan(&scans, id, lang).await? {
            Ok(scan_id) => scan_id,
            Err(code) => return Ok(code),
        },
        None => {
            let mode = if args.full {
                ScanMode::Full
            } else {
                ScanMode::Incremental
            };
            match scans.start(mode).await? {
                StartOutcome::Started(row) => row.scan_id,
                StartOutcome::AlreadyRunning(running) => return Ok(already_running(&running)),
            }
        }
    };
    let mut events = match scans.follow(&scan_id, None).await? {
        Following::Events(events) => events,
        Following::Unknown | Following::UpToDate => anyhow::bail!("the scan {scan_id} vanished"),
    };
    let mut out = Output::new(args.json, lang);
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let beats = !args.json && !std::io::stdout().is_terminal();
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let done = 'follow: loop {
        let batch = tokio::select! {
            // Ctrl-C first: polled before any event is printed, so its
            // handler is in place once the scan shows. The heartbeat before
            // the events, which a busy scan never runs out of.
            biased;
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                out.note(&lang.text(&Msg::CtrlC));
                scans.cancel(&scan_id).await?;
                continue;
            }
            _ = heartbeat.tick(), if beats => {
                out.heartbeat();
                continue;
            }
            batch = events.next() => batch,
        };
        // The stream ends early only when the database cannot be read.
        let batch = batch.context("the scan's events could not be read back")?;
        for event in batch.events() {
            let data = event.data(args.lang);
            out.event(event.kind, event.id, &data)?;
            if event.kind == EventKind::Done {
                break 'follow data;
            }
        }
    };
    shutdown.cancel();
    scans.drain(Duration::from_secs(5)).await;
    out.finish();
    let status = done["status"].as_str().unwrap_or_default();
    Ok(match status {
        s if s == ScanStatus::Completed.as_str() => EXIT_COMPLETED,
        s if s == ScanStatus::Cancelled.as_str() && interrupted => {
            out.after(&lang.text(&Msg::ResumeHint { id: &scan_id }));
            EXIT_CANCELLED
        }
        _ => EXIT_FAILED,
    })
}

/// Resumes scan `id`, or without one the newest resumable scan, through the
/// engine the server's resume route uses: its id, or (having said why) the
/// exit code when there is nothing to resume.
async fn resume_scan(
    scans: &Scans,
    id: Option<ScanId>,
    lang: Lang,
) -> anyhow::Result<Result<ScanId, i32>> {
    let id = match id {
        Some(id) => id,
        None => match scans.newest_resumable().await? {
            Some(row) => row.scan_id,
            None => return Ok(Err(refuse(lang, &Msg::ResumeNone))),
        },
    };
    Ok(match scans.resume(&id).await? {
        ResumeOutcome::Resumed(row) => Ok(row.scan_id),
        ResumeOutcome::NotFound => Err(refuse(lang, &Msg::ResumeUnknown { id: &id })),
        ResumeOutcome::NotResumable(status) => Err(refuse(
            lang,
            &Msg::ResumeNotResumable {
                id: &id,
                status: status.as_str(),
            },
        )),
        ResumeOutcome::AlreadyRunning(running) => Err(already_running(&running)),
    })
}

/// Says why nothing was started; the exit code.
fn refuse(lang: Lang, why: &Msg<'_>) -> i32 {
    eprintln!("calscan: {}", lang.text(why));
    EXIT_FAILED
}

/// Another scan holds the running slot; the exit code.
fn already_running(running: &str) -> i32 {
    eprintln!("calscan: a scan is already running on this database: {running}");
    EXIT_RUNNING
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
        /// The latest figures as a status line, for the heartbeat.
        status: String,
    },
}

/// The bar's two lines. The first fits the terminal's width, the bar taking
/// what the figures leave; the second, the step and counts, is cut to it.
const BAR_TEMPLATE: &str = "{spinner} {elapsed_precise} [{wide_bar}] {pos:>3} %\n{wide_msg}";

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(BAR_TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The step and counts of a progress event's `data`, and its percentage.
fn figures_text(lang: Lang, data: &Value) -> (u64, String) {
    let progress = data["progress"].as_u64().unwrap_or(0);
    let current = data["current_step"].as_str().unwrap_or_default();
    let total = data["events_total"]
        .as_i64()
        .map_or_else(|| "?".to_owned(), |t| t.to_string());
    let new = lang.text(&Msg::NewCount);
    let mut message = format!(
        "{current} · Events {}/{total} · Emails {} · {new} {}",
        data["events_scanned"], data["emails_found"], data["new_count"]
    );
    // The scan's own estimate: it knows the rate limit's windows, which a
    // bar's extrapolation cannot.
    if let Some(secs) = data["eta_s"].as_i64() {
        message.push_str(" · ");
        message.push_str(&lang.text(&Msg::Eta { secs }));
    }
    (progress, message)
}

/// The plain status line: on a step change, and as the heartbeat.
fn status_line(progress: u64, message: &str) -> String {
    format!("[{progress:>3} %] {message}")
}

impl Output {
    fn new(json: bool, lang: Lang) -> Self {
        if json {
            return Self::Json;
        }
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
            bar.set_style(bar_style());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self::Human {
            bar,
            lang,
            step: String::new(),
            status: String::new(),
        }
    }

    fn event(&mut self, kind: EventKind, id: i64, data: &Value) -> anyhow::Result<()> {
        match self {
            Self::Json => print_json(kind.as_str(), id, data),
            Self::Human { .. } => {
                match kind {
                    EventKind::Log => self.line(data["message"].as_str().unwrap_or_default()),
                    EventKind::Snapshot => {
                        for log in data["logs"].as_array().into_iter().flatten() {
                            self.line(log["message"].as_str().unwrap_or_default());
                        }
                        self.figures(data);
                    }
                    EventKind::Progress | EventKind::Done => self.figures(data),
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

    /// A line once the scan has ended: on stderr beside the NDJSON or where
    /// the bar was, else on stdout.
    fn after(&self, text: &str) {
        match self {
            Self::Human { bar, .. } if bar.is_hidden() => println!("{text}"),
            Self::Json => eprintln!("calscan: {text}"),
            Self::Human { .. } => eprintln!("{text}"),
        }
    }

    /// The latest status line again, on stdout, even if nothing changed.
    fn heartbeat(&self) {
        if let Self::Human { status, .. } = self
            && !status.is_empty()
        {
            println!("{status}");
        }
    }

    /// The bar's position and message; a plain line when the step changes.
    fn figures(&mut self, data: &Value) {
        let Self::Human {
            bar,
            lang,
            step,
            status,
        } = self
        else {
            return;
        };
        let (progress, message) = figures_text(*lang, data);
        let current = data["current_step"].as_str().unwrap_or_default();
        *status = status_line(progress, &message);
        bar.set_position(progress);
        bar.set_message(message);
        if bar.is_hidden() && current != step.as_str() {
            *step = current.to_owned();
            println!("{status}");
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    fn figures(total: Value) -> Value {
        json!({
            "progress": 42,
            "current_step": "Extrahiere Email-Adressen...",
            "events_scanned": 10,
            "events_total": total,
            "emails_found": 8,
            "new_count": 3,
            "eta_s": null,
        })
    }

    #[test]
    fn the_status_line_names_the_step_the_percentage_and_the_events() {
        let (progress, message) = figures_text(Lang::De, &figures(json!(60)));
        assert_eq!(
            status_line(progress, &message),
            "[ 42 %] Extrahiere Email-Adressen... · Events 10/60 · Emails 8 · neu 3"
        );
        let (progress, message) = figures_text(Lang::En, &figures(Value::Null));
        assert_eq!(
            status_line(progress, &message),
            "[ 42 %] Extrahiere Email-Adressen... · Events 10/? · Emails 8 · new 3"
        );
        let mut later = figures(json!(60));
        later["eta_s"] = json!(40);
        let (progress, message) = figures_text(Lang::De, &later);
        assert_eq!(
            status_line(progress, &message),
            "[ 42 %] Extrahiere Email-Adressen... · Events 10/60 · Emails 8 · neu 3 · noch ca. 40 s"
        );
        later["eta_s"] = json!(200);
        let (_, message) = figures_text(Lang::En, &later);
        assert!(message.ends_with(" · about 3 min left"), "{message}");
    }

    /// A terminal `width` columns wide that keeps each text written to it.
    #[derive(Debug, Clone)]
    struct Screen {
        width: u16,
        written: Arc<Mutex<Vec<String>>>,
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(s.to_owned());
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The bar's lines as last drawn on a terminal `width` columns wide
    /// (indicatif writes each line, then spaces to the line's end).
    fn drawn(width: u16, message: &str) -> Vec<String> {
        let screen = Screen {
            width,
            written: Arc::default(),
        };
        let bar = ProgressBar::with_draw_target(
            Some(100),
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
        );
        bar.set_style(bar_style());
        bar.set_position(42);
        bar.set_message(message.to_owned());
        bar.force_draw();
        let written = screen.written.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<String> = written
            .iter()
            .filter(|text| !text.trim().is_empty())
            .cloned()
            .collect();
        lines[lines.len().saturating_sub(2)..].to_vec()
    }

    #[test]
    fn the_bar_fits_the_terminals_width_and_cuts_the_message() {
        let (_, message) = figures_text(Lang::De, &figures(json!(12_345)));
        let long = format!("{message} {}", "x".repeat(80));
        for width in [60, 100] {
            let lines = drawn(width, &long);
            assert_eq!(lines.len(), 2, "{lines:?}");
            for line in &lines {
                assert!(
                    line.chars().count() <= usize::from(width),
                    "wider than {width}: {line:?}"
                );
            }
            assert!(lines[0].ends_with("]  42 %"), "{lines:?}");
            assert!(
                lines[1].starts_with("Extrahiere Email-Adressen... · Events 10/12345"),
                "{lines:?}"
            );
        }
        // The bar, not the figures, takes the extra width.
        let bar_width = |width| {
            let line = drawn(width, "step").remove(0);
            line.find(']').unwrap() - line.find('[').unwrap()
        };
        assert_eq!(bar_width(100), bar_width(60) + 40);
    }
}
