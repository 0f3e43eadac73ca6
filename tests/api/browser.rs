//! Browser tests: headless Chromium, driven through chromedriver (WebDriver)
//! by fantoccini, against a test app on 127.0.0.1.
//!
//! One chromedriver serves the whole test binary; every test opens its own
//! browser session with a fresh profile and the language it is about.
//! Without chromedriver the tests pass with a note on stderr, unless
//! `CALSCAN_BROWSER_TESTS=required` (CI) makes that an error.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use calscan::i18n::Lang;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

use crate::helpers::{AppOptions, PASSWORD, TestApp, spawn_app};

// ---- the harness ------------------------------------------------------------

/// How long a scan of a test app may take in a browser.
const SCAN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a page or a element on it may take to appear.
const PAGE_TIMEOUT: Duration = Duration::from_secs(15);

/// The chromedriver of this test binary.
struct Driver {
    url: String,
    _processes: Mutex<(Child, Child)>,
}

/// The running chromedriver, `None` when it is not installed and the browser
/// tests may be skipped. Panics when it is required but missing, or does not
/// start.
fn driver() -> Option<&'static Driver> {
    static DRIVER: OnceLock<Result<Option<Driver>, String>> = OnceLock::new();
    let driver = DRIVER.get_or_init(|| {
        let path = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
        if !path.is_file() {
            if std::env::var("CALSCAN_BROWSER_TESTS").as_deref() == Ok("required") {
                return Err(format!(
                    "CALSCAN_BROWSER_TESTS=required, but there is no chromedriver at {} \
                     (install chromium and chromium-driver, or set CHROMEDRIVER)",
                    path.display()
                ));
            }
            return Ok(None);
        }
        start_driver(&path).map(Some)
    });
    match driver {
        Ok(Some(driver)) => Some(driver),
        Ok(None) => {
            eprintln!(
                "skipped: chromedriver not found (install chromium-driver, or set \
                 CALSCAN_BROWSER_TESTS=required to make this an error)"
            );
            None
        }
        Err(message) => panic!("{message}"),
    }
}

/// Starts chromedriver on a free port of 127.0.0.1 and waits until it is
/// ready.
///
/// chromedriver runs in a process group of its own, with the browsers it
/// starts. A watchdog shell reads its stdin, a pipe only this process holds:
/// when the test binary ends, however it ends, the pipe closes and the
/// watchdog ends the group, so no chromedriver or Chromium outlives the tests.
fn start_driver(path: &std::path::Path) -> Result<Driver, String> {
    use std::os::unix::process::CommandExt;

    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.local_addr().map_err(|e| e.to_string())?.port()
    };
    let log = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut chromedriver = Command::new(path)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log.reopen().map_err(|e| e.to_string())?)
        .stderr(log.reopen().map_err(|e| e.to_string())?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{} did not start: {e}", path.display()))?;
    let watchdog = Command::new("sh")
        .args([
            "-c",
            r#"trap '' INT HUP; while read -r _; do :; done; kill -TERM "-$1" 2>/dev/null"#,
            "calscan-chromedriver-watchdog",
        ])
        .arg(chromedriver.id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let watchdog = match watchdog {
        Ok(watchdog) => watchdog,
        Err(e) => {
            let _ = chromedriver.kill();
            let _ = chromedriver.wait();
            return Err(format!("the chromedriver watchdog did not start: {e}"));
        }
    };

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if driver_is_ready(port) {
            return Ok(Driver {
                url: format!("http://127.0.0.1:{port}"),
                _processes: Mutex::new((chromedriver, watchdog)),
            });
        }
        let exited = chromedriver.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = chromedriver.kill();
            let _ = chromedriver.wait();
            let mut output = String::new();
            let _ = log.reopen().and_then(|mut f| f.read_to_string(&mut output));
            return Err(format!(
                "{} --port={port} {}; its output:\n{output}",
                path.display(),
                match exited {
                    Some(status) => format!("exited ({status})"),
                    None => "did not answer GET /status with ready within 10 s".to_owned(),
                }
            ));
        }
        // The interval between two polls of /status, not a wait for it.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether chromedriver answers `GET /status` with `"ready": true`.
fn driver_is_ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| stream.write_all(request))
        .is_err()
    {
        return false;
    }
    // chromedriver may keep the connection open: read until the body is a
    // whole JSON document (it is sent with a Content-Length, unchunked).
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return false,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
        let text = String::from_utf8_lossy(&answer);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        if !head.starts_with("HTTP/1.1 200") {
            return false;
        }
        if let Ok(status) = serde_json::from_str::<Value>(body) {
            return status["value"]["ready"] == json!(true);
        }
    }
}

fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::De => "de",
        Lang::En => "en",
    }
}

/// The other language: test apps fall back to it, so a page in `lang` proves
/// the browser asked for `lang`.
fn other(lang: Lang) -> Lang {
    match lang {
        Lang::De => Lang::En,
        Lang::En => Lang::De,
    }
}

/// Runs `body` in a new headless Chromium session that prefers `lang`, and
/// closes the session afterwards, also when `body` panics. Returns without
/// running `body` when the browser tests are skipped.
async fn in_browser<F, Fut>(lang: Lang, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(driver) = driver() else { return };
    let profile = tempfile::tempdir().unwrap();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": { "intl.accept_languages": lang_code(lang) },
        }),
    );
    let client = ClientBuilder::rustls()
        .expect("the WebDriver client's TLS setup")
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("no Chromium session from {}: {e}", driver.url));
    // Scripts may wait as long as a scan (see `wait_for_js`).
    client
        .update_timeouts(TimeoutConfiguration::new(
            Some(SCAN_TIMEOUT + Duration::from_secs(10)),
            Some(PAGE_TIMEOUT),
            Some(Duration::ZERO),
        ))
        .await
        .unwrap();
    let outcome = AssertUnwindSafe(body(client.clone())).catch_unwind().await;
    let closed = client.close().await;
    drop(profile);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    closed.expect("closing the browser session");
}

/// Waits until the page's JavaScript expression `predicate` is true, checking
/// it whenever the document changes; panics after `timeout` naming `what`.
async fn wait_for_js(client: &Client, what: &str, predicate: &str, timeout: Duration) {
    let script = format!(
        r#"
const done = arguments[arguments.length - 1];
const ready = () => {{ try {{ return Boolean({predicate}); }} catch (e) {{ return false; }} }};
if (ready()) {{ done(true); return; }}
let timer = null;
const observer = new MutationObserver(() => {{ if (ready()) finish(true); }});
function finish(value) {{ observer.disconnect(); clearTimeout(timer); done(value); }}
observer.observe(document, {{ subtree: true, childList: true, attributes: true, characterData: true }});
timer = setTimeout(() => finish(ready()), {ms});
"#,
        ms = timeout.as_millis()
    );
    let ready = client
        .execute_async(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
    if ready != json!(true) {
        panic!(
            "waited {timeout:?} in vain for {what}; the page says:\n{}",
            page_text(client).await
        );
    }
}

/// The visible text of the page, for failure messages.
async fn page_text(client: &Client) -> String {
    let url = client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let text = client
        .execute(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{url}\n{}", text.chars().take(2000).collect::<String>())
}

async fn text_of(client: &Client, selector: &str) -> String {
    client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .text()
        .await
        .unwrap()
        .trim()
        .to_owned()
}

/// The digits of a text: "1.234" and "1,234" are both 1234.
fn number_in(text: &str) -> Option<usize> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

async fn fill(client: &Client, selector: &str, value: &str) {
    let input = client
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"));
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

async fn click(client: &Client, selector: &str) {
    client
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
}

/// Logs in through the form and waits for the customer page.
async fn log_in(client: &Client, app: &TestApp) {
    client.goto(&app.url("/login")).await.unwrap();
    fill(client, "#username", "admin").await;
    fill(client, "#password", PASSWORD).await;
    click(client, "button[type=submit]").await;
    let target = app.url("/admin/customer_search").parse().unwrap();
    if client
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_url(&target)
        .await
        .is_err()
    {
        panic!(
            "the login did not lead to {target}; the page says:\n{}",
            page_text(client).await
        );
    }
}

/// Logs in and waits until the customer page shows its scan panel.
async fn open_customer_page(client: &Client, app: &TestApp) {
    log_in(client, app).await;
    if client
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_element(Locator::Css("#scan-panel"))
        .await
        .is_err()
    {
        panic!(
            "the customer page has no #scan-panel; the page says:\n{}",
            page_text(client).await
        );
    }
}

/// Waits until the scan shown on the page has ended and asserts that it
/// completed.
async fn wait_for_the_scan_to_complete(client: &Client) {
    wait_for_js(
        client,
        "the end of the scan",
        r#"!["idle", "running"].includes(document.querySelector('#scan-panel').dataset.scanState)"#,
        SCAN_TIMEOUT,
    )
    .await;
    let state = client
        .find(Locator::Css("#scan-panel"))
        .await
        .unwrap()
        .attr("data-scan-state")
        .await
        .unwrap();
    assert_eq!(
        state.as_deref(),
        Some("completed"),
        "the scan did not complete; the page says:\n{}",
        page_text(client).await
    );
}

/// Asserts the scan panel's figures of a completed scan that found `emails`
/// emails, all of them new.
async fn assert_the_stats_show(client: &Client, emails: usize) {
    for selector in ["#stat-emails", "#stat-new"] {
        let text = text_of(client, selector).await;
        assert_eq!(number_in(&text), Some(emails), "{selector} reads {text:?}");
    }
    let existing = text_of(client, "#stat-existing").await;
    assert_eq!(
        number_in(&existing),
        Some(0),
        "#stat-existing: {existing:?}"
    );
}

/// Waits until `#customer-total` reads `expected`; the page may ask for the
/// total once the scan has ended.
async fn wait_for_customer_total(client: &Client, expected: usize) {
    wait_for_js(
        client,
        &format!("#customer-total reading {expected}"),
        &format!(
            r#"document.querySelector('#customer-total').textContent.replace(/\D/g, "") === "{expected}""#
        ),
        PAGE_TIMEOUT,
    )
    .await;
}

/// axe-core's script (`CALSCAN_AXE_JS`, which `.ci/run` installs from npm);
/// `None` when it is not there and the audit may be skipped. Panics when the
/// browser tests are required and it is missing.
fn axe_source() -> Option<&'static str> {
    static AXE: OnceLock<Option<String>> = OnceLock::new();
    AXE.get_or_init(|| {
        let path = std::env::var_os("CALSCAN_AXE_JS").map(PathBuf::from);
        match path.as_deref().map(std::fs::read_to_string) {
            Some(Ok(source)) => Some(source),
            found => {
                let why = format!(
                    "no axe-core at CALSCAN_AXE_JS ({found:?}): \
                     npm install axe-core and point CALSCAN_AXE_JS at its axe.min.js"
                );
                if std::env::var("CALSCAN_BROWSER_TESTS").as_deref() == Ok("required") {
                    panic!("CALSCAN_BROWSER_TESTS=required, but {why}");
                }
                eprintln!("accessibility audits skipped: {why}");
                None
            }
        }
    })
    .as_deref()
}

/// Runs axe-core on the page as it is now and asserts it finds no
/// violation (WCAG 2.1 A and AA, and axe's best practices).
async fn assert_accessible(client: &Client, what: &str) {
    let Some(axe) = axe_source() else { return };
    let loaded = client
        .execute("return typeof window.axe === 'object';", vec![])
        .await
        .unwrap();
    if loaded != json!(true) {
        client
            .execute(&format!("{axe}\nreturn true;"), vec![])
            .await
            .unwrap();
    }
    let violations = client
        .execute_async(
            r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ["violations"] })
  .then((r) => done(r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.html),
  }))))
  .catch((e) => done([{ id: "axe-failed", help: String(e) }]));
"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        violations,
        json!([]),
        "axe-core on {what}: {}",
        serde_json::to_string_pretty(&violations).unwrap()
    );
}

/// The desktop and the phone viewport the pages are judged at.
const VIEWPORTS: [(u32, u32); 2] = [(1280, 800), (390, 844)];

/// Sets the viewport (not the window) to `width` × `height`.
async fn set_viewport(client: &Client, (width, height): (u32, u32)) {
    client.set_window_size(width, height).await.unwrap();
    // The window's frame, if any, is what the viewport lacks: add it.
    let inner = client
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .unwrap();
    let (w, h) = (
        inner[0].as_u64().unwrap() as u32,
        inner[1].as_u64().unwrap() as u32,
    );
    if (w, h) != (width, height) {
        client
            .set_window_size(2 * width - w, 2 * height - h)
            .await
            .unwrap();
    }
}

/// Whether the element `selector` lies wholly within the first screen.
async fn in_first_viewport(client: &Client, selector: &str) -> bool {
    client
        .execute(
            &format!(
                "const r = document.querySelector({}).getBoundingClientRect(); \
                 return r.top >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;",
                serde_json::to_string(selector).unwrap()
            ),
            vec![],
        )
        .await
        .unwrap()
        == json!(true)
}

/// Audits the page at both viewports, checking at each that `first` (if
/// any) is on the first screen.
async fn audit(client: &Client, what: &str, first: &[&str]) {
    for viewport in VIEWPORTS {
        set_viewport(client, viewport).await;
        client
            .execute("window.scrollTo(0, 0); return true;", vec![])
            .await
            .unwrap();
        for selector in first {
            assert!(
                in_first_viewport(client, selector).await,
                "{selector} is not on the first screen of {what} at {viewport:?}"
            );
        }
        assert_accessible(client, &format!("{what} at {viewport:?}")).await;
    }
}

/// A Chrome DevTools command, through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp(Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(self.0.to_string()))
    }
}

/// Makes the page see `prefers-color-scheme: dark` (or light again).
async fn prefer_dark(client: &Client, dark: bool) {
    let scheme = if dark { "dark" } else { "light" };
    client
        .issue_cmd(Cdp(json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
        })))
        .await
        .unwrap();
    let matches = client
        .execute(
            "return window.matchMedia('(prefers-color-scheme: dark)').matches;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        matches,
        json!(dark),
        "the emulated colour scheme did not apply"
    );
}

/// The log's times by line id, as the page shows them.
async fn log_times(client: &Client) -> Value {
    client
        .execute(
            "const times = {}; document.querySelectorAll('#scan-log li').forEach((li) => { \
             times[li.dataset.id] = li.querySelector('time').textContent; }); return times;",
            vec![],
        )
        .await
        .unwrap()
}

/// A test app whose simulator has 40 events, each answer `latency_ms` late,
/// and whose fallback language is not `lang` (so the page must follow the
/// browser's).
async fn forty_slow_events(lang: Lang, latency_ms: u64) -> TestApp {
    spawn_app(AppOptions {
        events: 40,
        tweak_sim: Box::new(move |c| c.latency = Duration::from_millis(latency_ms)),
        lang: other(lang),
        ..Default::default()
    })
    .await
}

// ---- the tests ----------------------------------------------------------------

/// Each body runs once per language, as `in_german::…` and `in_english::…`.
macro_rules! in_both_languages {
    ($($test:ident),* $(,)?) => {
        mod in_german {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(calscan::i18n::Lang::De).await;
                }
            )*
        }
        mod in_english {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(calscan::i18n::Lang::En).await;
                }
            )*
        }
    };
}

in_both_languages!(
    the_login_page_refuses_a_wrong_password_and_logs_in_with_the_right_one,
    a_click_on_the_scan_button_shows_the_scan_live_to_the_end,
    markup_in_a_name_is_shown_as_text,
    with_the_stream_blocked_the_page_finishes_by_polling,
    a_page_opened_while_a_scan_runs_shows_it_live_at_once,
    a_rate_limited_scan_reads_true_on_every_page_at_both_widths,
    a_session_that_ended_under_the_panel_leads_to_the_login_and_back,
    the_historys_running_row_follows_its_scan_to_the_end,
);

async fn the_login_page_refuses_a_wrong_password_and_logs_in_with_the_right_one(lang: Lang) {
    let app = spawn_app(AppOptions {
        lang: other(lang),
        ..Default::default()
    })
    .await;
    in_browser(lang, |client| async move {
        client.goto(&app.url("/login")).await.unwrap();
        fill(&client, "#username", "admin").await;
        fill(&client, "#password", "not the password").await;
        click(&client, "button[type=submit]").await;
        let error = client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css("p.error"))
            .await
            .expect("no p.error after a wrong password");
        let expected = match lang {
            Lang::De => "Benutzername oder Passwort ist falsch.",
            Lang::En => "Wrong user name or password.",
        };
        assert_eq!(error.text().await.unwrap().trim(), expected);

        fill(&client, "#username", "admin").await;
        fill(&client, "#password", PASSWORD).await;
        click(&client, "button[type=submit]").await;
        let target = app.url("/admin/customer_search").parse().unwrap();
        client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_url(&target)
            .await
            .unwrap_or_else(|_| panic!("the login did not lead to {target}"));
        assert!(
            client
                .current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/admin/customer_search")
        );
    })
    .await;
}

async fn a_click_on_the_scan_button_shows_the_scan_live_to_the_end(lang: Lang) {
    let app = forty_slow_events(lang, 30).await;
    let emails = app.sim.expected_emails().len();
    in_browser(lang, |client| async move {
        open_customer_page(&client, &app).await;
        assert_eq!(number_in(&text_of(&client, "#customer-total").await), Some(0));
        let start = text_of(&client, "#scan-start").await;
        assert!(start.contains("Calendly Scan"), "#scan-start reads {start:?}");

        // Remembers, on every change of the page, whether the scan was seen
        // running with at least two log lines; and marks this page, to tell
        // it from a reloaded one.
        client
            .execute(
                r#"
window.__marker = 1;
window.__sawRunningWithLines = false;
const record = () => {
    const panel = document.querySelector('#scan-panel');
    if (panel && panel.dataset.scanState === "running"
        && document.querySelectorAll('#scan-log li').length >= 2) {
        window.__sawRunningWithLines = true;
    }
};
new MutationObserver(record).observe(document, {
    subtree: true, childList: true, attributes: true, characterData: true,
});
"#,
                vec![],
            )
            .await
            .unwrap();
        click(&client, "#scan-start").await;
        wait_for_js(
            &client,
            "the scan running with two log lines",
            r#"window.__sawRunningWithLines === true
                || !["idle", "running"].includes(document.querySelector('#scan-panel').dataset.scanState)"#,
            SCAN_TIMEOUT,
        )
        .await;
        let saw = client
            .execute("return window.__sawRunningWithLines;", vec![])
            .await
            .unwrap();
        assert_eq!(
            saw,
            json!(true),
            "the scan ended before the page showed it running with two log lines:\n{}",
            page_text(&client).await
        );
        wait_for_the_scan_to_complete(&client).await;

        let progress = client.find(Locator::Css("#scan-progress")).await.unwrap();
        assert_eq!(progress.attr("role").await.unwrap().as_deref(), Some("progressbar"));
        assert_eq!(progress.attr("aria-valuenow").await.unwrap().as_deref(), Some("100"));
        let percent = text_of(&client, "#scan-percent").await;
        assert_eq!(number_in(&percent), Some(100), "#scan-percent reads {percent:?}");
        assert_the_stats_show(&client, emails).await;
        let status = text_of(&client, "#scan-status").await;
        assert!(
            status.contains(&emails.to_string()),
            "#scan-status does not give the {emails} emails: {status:?}"
        );
        assert!(
            client
                .find_all(Locator::Css("#scan-log li"))
                .await
                .unwrap()
                .len()
                >= 2
        );
        wait_for_customer_total(&client, emails).await;

        let same_page = client
            .execute(
                "return [performance.getEntriesByType('navigation').length, window.__marker];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(same_page, json!([1, 1]), "the page was reloaded");

        // `CALSCAN_SCREENSHOT_DIR=docs cargo test browser` refreshes the
        // README's picture of the finished panel.
        if let Ok(dir) = std::env::var("CALSCAN_SCREENSHOT_DIR") {
            let panel = client.find(Locator::Css("#scan-panel")).await.unwrap();
            let png = panel.screenshot().await.unwrap();
            let path = std::path::Path::new(&dir).join(format!("scan-panel-{}.png", lang_code(lang)));
            std::fs::write(&path, png).unwrap();
        }

        // The first scan was incremental (the default); ticking the box
        // asks for a full one.
        click(&client, "#scan-full").await;
        click(&client, "#scan-start").await;
        let deadline = std::time::Instant::now() + SCAN_TIMEOUT;
        let second = loop {
            let ids = app.history("scan_id").await;
            if ids.len() == 2 {
                break ids[0].clone();
            }
            assert!(std::time::Instant::now() < deadline, "no second scan started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let done = app.follow(&second).await.last().unwrap().data.clone();
        assert_eq!(done["status"], "completed");
        assert_eq!(done["existing_count"], emails as i64, "a full scan reads every event");
        assert_eq!(app.history("mode").await, ["full", "incremental"]);
    })
    .await;
}

async fn markup_in_a_name_is_shown_as_text(lang: Lang) {
    const NAME: &str = "<img src=x onerror=alert(1)>";
    let app = spawn_app(AppOptions {
        events: 20,
        tweak_sim: Box::new(|c| c.first_invitee_name = Some(NAME.into())),
        lang: other(lang),
        ..Default::default()
    })
    .await;
    let emails = app.sim.expected_emails().len();
    in_browser(lang, |client| async move {
        open_customer_page(&client, &app).await;
        click(&client, "#scan-start").await;
        wait_for_the_scan_to_complete(&client).await;
        wait_for_customer_total(&client, emails).await;
        wait_for_js(
            &client,
            "a customer cell reading the name",
            &format!(
                r#"Array.from(document.querySelectorAll('#customer-rows td')).some(td => td.textContent.trim() === {})"#,
                serde_json::to_string(NAME).unwrap()
            ),
            PAGE_TIMEOUT,
        )
        .await;
        let images = client
            .execute(
                "return document.querySelectorAll('#customer-rows img').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(images, json!(0), "the name became an element");
    })
    .await;
}

async fn with_the_stream_blocked_the_page_finishes_by_polling(lang: Lang) {
    let app = spawn_app(AppOptions {
        block_sse: true,
        lang: other(lang),
        ..Default::default()
    })
    .await;
    let emails = app.sim.expected_emails().len();
    in_browser(lang, |client| async move {
        open_customer_page(&client, &app).await;
        click(&client, "#scan-start").await;
        wait_for_the_scan_to_complete(&client).await;
        let note = client
            .find(Locator::Css("#scan-transport-note"))
            .await
            .unwrap();
        assert!(
            note.is_displayed().await.unwrap(),
            "#scan-transport-note is hidden"
        );
        let text = note.text().await.unwrap();
        assert!(!text.trim().is_empty(), "#scan-transport-note is empty");
        assert_the_stats_show(&client, emails).await;
        wait_for_customer_total(&client, emails).await;
    })
    .await;
}

async fn a_page_opened_while_a_scan_runs_shows_it_live_at_once(lang: Lang) {
    let app = forty_slow_events(lang, 150).await;
    let emails = app.sim.expected_emails().len();
    in_browser(lang, |client| async move {
        open_customer_page(&client, &app).await;
        // Started by someone else (the API); then the page is opened anew.
        let scan_id = app.start_scan().await;
        client
            .goto(&app.url("/admin/customer_search"))
            .await
            .unwrap();
        let panel = client.find(Locator::Css("#scan-panel")).await.unwrap();
        assert_eq!(
            panel.attr("data-scan-id").await.unwrap().as_deref(),
            Some(scan_id.as_str())
        );
        assert_eq!(
            panel.attr("data-scan-state").await.unwrap().as_deref(),
            Some("running"),
            "the scan ended before the page was opened; raise the latency"
        );
        wait_for_the_scan_to_complete(&client).await;
        assert_the_stats_show(&client, emails).await;
        wait_for_customer_total(&client, emails).await;
        assert!(
            client
                .find_all(Locator::Css("#scan-log li"))
                .await
                .unwrap()
                .len()
                >= 5
        );
    })
    .await;
}

async fn a_rate_limited_scan_reads_true_on_every_page_at_both_widths(lang: Lang) {
    // 40 events, 25 calls per 6 s: the scan waits once for Calendly's limit,
    // long enough to be told however slowly the first calls go.
    let app = spawn_app(AppOptions {
        events: 40,
        tweak_sim: Box::new(|c| {
            c.rate_limit = 25;
            c.rate_window = Duration::from_secs(6);
            c.latency = Duration::from_millis(10);
        }),
        lang: other(lang),
        ..Default::default()
    })
    .await;
    let emails = app.sim.expected_emails().len();
    let (wait_words, count_words, eta_words, last_words) = match lang {
        Lang::De => (
            "⏳ Calendly-Limit erreicht – weiter um ",
            "Events ",
            "noch ca. ",
            "Letzter Scan: heute ",
        ),
        Lang::En => (
            "⏳ Calendly's rate limit reached – going on at ",
            "Events ",
            "about ",
            "Last scan: today ",
        ),
    };
    in_browser(lang, |client| async move {
        client.goto(&app.url("/login")).await.unwrap();
        audit(&client, "the login page", &["#username"]).await;
        open_customer_page(&client, &app).await;
        audit(&client, "the idle customer page", &["#scan-start", "#scan-status"]).await;

        // Every progress the bar shows, in order, and whether the wait and
        // "x / y" were seen while the scan ran.
        client
            .execute(
                r#"
const waitWords = arguments[0], etaWords = arguments[1];
window.__progress = [];
window.__sawWait = false;
window.__sawCount = false;
window.__sawEta = false;
new MutationObserver(() => {
    const bar = document.querySelector('#scan-progress');
    const now = Number(bar.getAttribute('aria-valuenow'));
    if (window.__progress[window.__progress.length - 1] !== now) window.__progress.push(now);
    const step = document.querySelector('#scan-step').textContent;
    if (step.startsWith(waitWords) && bar.getAttribute('aria-valuetext').includes(step)) window.__sawWait = true;
    if (/^Events \d+ \/ 40$/.test(document.querySelector('#scan-count').textContent)) window.__sawCount = true;
    if (document.querySelector('#scan-eta').textContent.startsWith(etaWords)) window.__sawEta = true;
}).observe(document.querySelector('#scan-panel'), { subtree: true, childList: true, attributes: true, characterData: true });
return true;
"#,
                vec![json!(wait_words), json!(eta_words)],
            )
            .await
            .unwrap();
        set_viewport(&client, VIEWPORTS[1]).await;
        click(&client, "#scan-start").await;
        let focused = client
            .execute("return document.activeElement && document.activeElement.id;", vec![])
            .await
            .unwrap();
        assert_eq!(focused, json!("scan-start"), "the focus left the scan button");

        // The wait is said in the step and in the log, in the page's language.
        wait_for_js(&client, "the rate-limit wait in the step", "window.__sawWait === true", SCAN_TIMEOUT).await;
        let log = text_of(&client, "#scan-log").await;
        assert!(log.contains(wait_words), "the log does not say the wait:\n{log}");
        audit(&client, "the customer page during a scan", &["#scan-start", "#scan-step"]).await;
        wait_for_the_scan_to_complete(&client).await;
        let seen = client
            .execute("return [window.__sawCount, window.__sawEta, window.__progress];", vec![])
            .await
            .unwrap();
        assert_eq!(seen[0], json!(true), "no \"{count_words}x / 40\" while the scan ran");
        assert_eq!(seen[1], json!(true), "no \"{eta_words}…\" while the scan ran");
        let progress: Vec<u64> = seen[2].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "the bar went back: {progress:?}");
        assert!(progress.len() >= 10, "the bar moved in too few steps: {progress:?}");
        assert_eq!(progress.last(), Some(&100));

        // The result is announced at the top, in words the server renders.
        wait_for_js(
            &client,
            "the last scan's line",
            &format!("document.querySelector('#scan-status').textContent.startsWith({})", serde_json::to_string(last_words).unwrap()),
            PAGE_TIMEOUT,
        )
        .await;
        let status = text_of(&client, "#scan-status").await;
        assert!(status.contains(&emails.to_string()), "{status}");
        assert!(!status.contains("0 Events, 0 Emails"), "{status}");
        wait_for_customer_total(&client, emails).await;
        audit(&client, "the customer page after a scan", &["#scan-status"]).await;
        prefer_dark(&client, true).await;
        let background = client
            .execute("return getComputedStyle(document.documentElement).backgroundColor;", vec![])
            .await
            .unwrap();
        assert_eq!(background, json!("rgb(18, 22, 28)"), "no dark theme");
        audit(&client, "the customer page after a scan, dark", &["#scan-status"]).await;
        prefer_dark(&client, false).await;

        // At phone width the customers are cards: the name under the email.
        set_viewport(&client, VIEWPORTS[1]).await;
        let stacked = client
            .execute(
                "const row = document.querySelector('#customer-rows tr'); \
                 return row.querySelector('td.name').getBoundingClientRect().top \
                   > row.querySelector('td.email').getBoundingClientRect().top;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(stacked, json!(true), "the customer rows are not cards at 390 px");
        // `CALSCAN_SCREENSHOT_DIR=docs` also takes the phone's first screen.
        if let Ok(dir) = std::env::var("CALSCAN_SCREENSHOT_DIR") {
            client.execute("window.scrollTo(0, 0); return true;", vec![]).await.unwrap();
            let png = client.screenshot().await.unwrap();
            let path = std::path::Path::new(&dir).join(format!("phone-{}.png", lang_code(lang)));
            std::fs::write(&path, png).unwrap();
        }

        // One clock: the log's times live and after a reload are the same.
        let live = log_times(&client).await;
        client.refresh().await.unwrap();
        client.wait().at_most(PAGE_TIMEOUT).for_element(Locator::Css("#scan-log li")).await.unwrap();
        let reloaded = log_times(&client).await;
        assert!(live.as_object().unwrap().len() >= 5, "{live}");
        for (id, time) in live.as_object().unwrap() {
            assert_eq!(reloaded.get(id), Some(time), "line {id}: live {time}, reloaded {reloaded}");
            assert!(
                time.as_str().unwrap().len() == 8 && time.as_str().unwrap().as_bytes()[2] == b':',
                "not HH:MM:SS: {time}"
            );
        }

        client.goto(&app.url("/admin/scans")).await.unwrap();
        audit(&client, "the scan history", &["table.scans .badge"]).await;
        prefer_dark(&client, true).await;
        audit(&client, "the scan history, dark", &["table.scans .badge"]).await;
        prefer_dark(&client, false).await;
        let badge = text_of(&client, "table.scans .badge-completed").await;
        assert!(!badge.is_empty());
        client.find(Locator::Css("table.scans a")).await.unwrap().click().await.unwrap();
        client.wait().at_most(PAGE_TIMEOUT).for_element(Locator::Css("#scan-panel")).await.unwrap();
        audit(&client, "a scan's page", &["h1"]).await;
        let heading = text_of(&client, "h1").await;
        let expected = match lang {
            Lang::De => "Scan vom ",
            Lang::En => "Scan of ",
        };
        assert!(heading.starts_with(expected), "{heading}");
        assert!(
            client.find(Locator::Css("#scan-start")).await.is_err(),
            "a scan's page offers to start another"
        );
    })
    .await;
}

async fn a_session_that_ended_under_the_panel_leads_to_the_login_and_back(lang: Lang) {
    let app = spawn_app(AppOptions {
        lang: other(lang),
        ..Default::default()
    })
    .await;
    let said = match lang {
        Lang::De => "Die Sitzung ist abgelaufen.",
        Lang::En => "Your session has ended.",
    };
    in_browser(lang, |client| async move {
        log_in(&client, &app).await;
        client
            .goto(&app.url("/admin/customer_search?q=example"))
            .await
            .unwrap();
        client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css("#scan-start"))
            .await
            .unwrap();
        // The session ends while the page is open; the next click asks the API.
        crate::helpers::exec(&app.database_url, "DELETE FROM sessions").await;
        click(&client, "#scan-start").await;
        // WebDriver's own wait: a script waiting in the page would die with
        // the page when the browser leaves it.
        let saying = format!("//p[contains(., '{said}')]");
        if client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::XPath(&saying))
            .await
            .is_err()
        {
            panic!(
                "no login saying the session ended:\n{}",
                page_text(&client).await
            );
        }
        let at = client.current_url().await.unwrap();
        assert_eq!(at.path(), "/login");
        assert_eq!(
            app.history("scan_id").await.len(),
            0,
            "a scan started without a session"
        );
        fill(&client, "#username", "admin").await;
        fill(&client, "#password", PASSWORD).await;
        click(&client, "button[type=submit]").await;
        let back = app.url("/admin/customer_search?q=example").parse().unwrap();
        if client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_url(&back)
            .await
            .is_err()
        {
            panic!(
                "the login did not return to {back}:\n{}",
                page_text(&client).await
            );
        }
    })
    .await;
}

async fn the_historys_running_row_follows_its_scan_to_the_end(lang: Lang) {
    let app = forty_slow_events(lang, 150).await;
    in_browser(lang, |client| async move {
        log_in(&client, &app).await;
        let scan_id = app.start_scan().await;
        client.goto(&app.url("/admin/scans")).await.unwrap();
        let row = format!("table.scans tr[data-scan-id='{scan_id}']");
        assert_eq!(
            client
                .find(Locator::Css(&row))
                .await
                .unwrap()
                .attr("data-status")
                .await
                .unwrap()
                .as_deref(),
            Some("running"),
            "the scan ended before the page was opened; raise the latency"
        );
        wait_for_js(
            &client,
            "the running row counting events",
            &format!(
                r#"/^\d+ % · .* · Events \d+ \/ 40$/.test(document.querySelector("{row} td.result").textContent)"#
            ),
            SCAN_TIMEOUT,
        )
        .await;
        // When it ends the row shows the server's badge and summary.
        client
            .wait()
            .at_most(SCAN_TIMEOUT)
            .for_element(Locator::Css(&format!("{row} .badge-completed")))
            .await
            .unwrap_or_else(|e| panic!("no completed badge: {e}"));
    })
    .await;
}
