//! Who may use calscan: the admin login (Argon2id), server-side sessions in
//! the store, the optional API bearer token, the guard that refuses
//! state-changing requests from other origins, and login throttling.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::error::AppError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "calscan_session";

/// Failed logins are counted per client over this window.
const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How long a login waits for a turn at the password check before it is
/// told to come back.
const CHECK_WAIT: Duration = Duration::from_secs(2);

/// Failed logins of the account (from any addresses) in [`LOGIN_WINDOW`]
/// (at least; twice the per-client limit if that is more) before each
/// further check waits: 1 s, then 2, 4, … up to
/// [`ACCOUNT_DELAY_MAX`]. A delay, not a lock: guessing from many addresses
/// gets slow, and the admin is never kept out for longer than that.
const ACCOUNT_FREE_FAILURES: u32 = 10;
const ACCOUNT_DELAY_MAX: Duration = Duration::from_secs(16);

/// The login settings, made once at start.
pub struct Auth {
    pub admin_user: String,
    /// Argon2id PHC string.
    password_hash: String,
    /// SHA-256 of `CALSCAN_API_TOKEN`.
    api_token_digest: Option<[u8; 32]>,
    pub cookie_secure: bool,
    pub session_idle: Duration,
    /// How long a session lasts however much it is used.
    pub session_max: Duration,
    login_attempts: u32,
    /// Per client: the attempts counted (failed, or being checked), since when.
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// Turns at the Argon2id check, one per core: each check holds 19 MiB,
    /// so parallel logins cannot take the server's memory.
    checks: tokio::sync::Semaphore,
    /// `CALSCAN_TRUSTED_PROXIES`: the peers whose forwarding headers name
    /// the client.
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Failed logins of the account, from any client, and since when: past
    /// [`ACCOUNT_FREE_FAILURES`] each check waits longer.
    account: Mutex<(u32, Instant)>,
    /// The checks' working memory, one block list per turn, kept: memory a
    /// check allocated and freed stays with the allocator (glibc keeps it
    /// per thread), so 200 parallel logins grew the server by 300 MiB.
    memory: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
}

/// Why a login was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotChecked {
    /// The client used up its attempts; it may try again after this long.
    Throttled(Duration),
    /// Every turn at the check stayed taken; try again shortly.
    Busy,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("admin_user", &self.admin_user)
            .field("cookie_secure", &self.cookie_secure)
            .finish_non_exhaustive()
    }
}

/// How the admin password is given.
#[derive(Debug, Clone)]
pub enum AdminPassword {
    Plain(SecretString),
    Hash(String),
}

/// How the admin and API clients get in.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub admin_user: String,
    pub admin_password: AdminPassword,
    /// `CALSCAN_API_TOKEN`: `Authorization: Bearer` for API clients.
    pub api_token: Option<SecretString>,
    /// Whether the session cookie is marked `Secure` (served over HTTPS).
    pub cookie_secure: bool,
    /// How long a session lasts unused.
    pub session_idle: Duration,
    /// How long a session lasts however much it is used.
    pub session_max: Duration,
    /// Failed logins a client may make before it waits.
    pub login_attempts: u32,
    /// `CALSCAN_TRUSTED_PROXIES`: the peers whose forwarding headers name
    /// the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// [`AuthSettings::session_idle`] unless set.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(120 * 60);
/// [`AuthSettings::session_max`] unless set.
pub const DEFAULT_SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
/// [`AuthSettings::login_attempts`] unless set.
pub const DEFAULT_LOGIN_ATTEMPTS: u32 = 5;

impl AuthSettings {
    /// The admin's account, everything else as by default.
    pub fn new(admin_user: impl Into<String>, admin_password: AdminPassword) -> Self {
        Self {
            admin_user: admin_user.into(),
            admin_password,
            api_token: None,
            cookie_secure: false,
            session_idle: DEFAULT_SESSION_IDLE,
            session_max: DEFAULT_SESSION_MAX,
            login_attempts: DEFAULT_LOGIN_ATTEMPTS,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Auth {
    /// A new session for the admin, in place of `old` (the id the browser
    /// still had): its id, for [`Self::session_cookie`]. A new id at every
    /// login, so a planted cookie never becomes a session.
    pub async fn open_session(
        &self,
        store: &dyn crate::store::Store,
        old: Option<&str>,
    ) -> Result<String, crate::store::StoreError> {
        let id = URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>());
        let now = crate::time::now_ms();
        let ends =
            now.saturating_add(i64::try_from(self.session_max.as_millis()).unwrap_or(i64::MAX));
        store
            .create_session(
                &session_digest(&id),
                &self.admin_user,
                now + self.idle_ms(),
                ends,
            )
            .await?;
        if let Some(old) = old {
            let _ = store.delete_session(&session_digest(old)).await;
        }
        Ok(id)
    }

    /// Ends session `id` on the server.
    pub async fn close_session(
        &self,
        store: &dyn crate::store::Store,
        id: &str,
    ) -> Result<(), crate::store::StoreError> {
        store.delete_session(&session_digest(id)).await
    }

    /// The cookie that carries session `id`: never readable by scripts,
    /// never sent from another site, `Secure` behind TLS.
    pub fn session_cookie(&self, id: String) -> Cookie<'static> {
        Cookie::build((SESSION_COOKIE, id))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.cookie_secure)
            .path("/")
            .build()
    }

    /// A logged-in admin or an API client with the token: the name it goes by.
    /// A valid session's idle expiry slides. `None`: neither.
    pub async fn admin(
        &self,
        headers: &HeaderMap,
        store: &dyn crate::store::Store,
    ) -> Result<Option<String>, crate::store::StoreError> {
        if let Some(expected) = &self.api_token_digest
            && let Some(token) = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
            && constant_time_eq(&digest(token.trim()), expected)
        {
            return Ok(Some("api".into()));
        }
        let jar = CookieJar::from_headers(headers);
        let Some(cookie) = jar.get(SESSION_COOKIE) else {
            return Ok(None);
        };
        let now = crate::time::now_ms();
        store
            .touch_session(&session_digest(cookie.value()), now, now + self.idle_ms())
            .await
    }

    /// Hashes a plain password off the runtime (Argon2id is deliberately slow)
    /// or checks a given hash.
    pub async fn new(settings: AuthSettings) -> anyhow::Result<Self> {
        let AuthSettings {
            admin_user,
            admin_password: password,
            api_token,
            cookie_secure,
            session_idle,
            session_max,
            login_attempts,
            trusted_proxies,
        } = settings;
        let password_hash = match password {
            AdminPassword::Plain(plain) => hash_password(plain).await?,
            AdminPassword::Hash(hash) => {
                password_auth::is_hash_obsolete(&hash).map_err(|e| {
                    anyhow::anyhow!(
                        "CALSCAN_ADMIN_PASSWORD_HASH is not a PHC string ({e}); make one with \
                         `calscan hash-password`"
                    )
                })?;
                hash
            }
        };
        Ok(Self {
            admin_user,
            password_hash,
            api_token_digest: api_token.map(|t| digest(t.expose_secret())),
            cookie_secure,
            session_idle,
            session_max,
            login_attempts,
            failures: Mutex::new(HashMap::new()),
            checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
            memory: Arc::new(Mutex::new(Vec::new())),
            trusted_proxies,
            account: Mutex::new((0, Instant::now())),
        })
    }

    /// Whether `username` and `password` are the admin's, checked only when
    /// `client` has an attempt left, which the check then uses up until a
    /// success gives them all back: parallel guesses of one client are
    /// checked at most as often as the limit allows. Takes the same time for
    /// an unknown user as for a wrong password.
    pub async fn attempt(
        &self,
        client: IpAddr,
        username: &str,
        password: String,
    ) -> Result<bool, NotChecked> {
        self.reserve(client)?;
        tokio::time::sleep(self.account_delay()).await;
        let turn = match tokio::time::timeout(CHECK_WAIT, self.checks.acquire()).await {
            Ok(Ok(turn)) => turn,
            _ => {
                self.give_back(client);
                return Err(NotChecked::Busy);
            }
        };
        let hash = self.password_hash.clone();
        let kept = self.memory.clone();
        let password_ok = tokio::task::spawn_blocking(move || {
            let mut memory = kept
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .unwrap_or_default();
            let ok = verify_in(password.as_bytes(), &hash, &mut memory);
            kept.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
            ok
        })
        .await
        .unwrap_or(false);
        drop(turn);
        let user_ok = constant_time_eq(&digest(username), &digest(&self.admin_user));
        let ok = password_ok && user_ok;
        let mut account = self.account.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            self.lock_failures().remove(&client);
            *account = (0, Instant::now());
        } else {
            if account.1.elapsed() >= LOGIN_WINDOW {
                *account = (0, Instant::now());
            }
            account.0 += 1;
        }
        Ok(ok)
    }

    /// How long a check of the account waits, after its recent failures.
    fn account_delay(&self) -> Duration {
        let (failures, since) = *self.account.lock().unwrap_or_else(|e| e.into_inner());
        // At least twice what one client may fail.
        let free = self
            .login_attempts
            .saturating_mul(2)
            .max(ACCOUNT_FREE_FAILURES);
        if since.elapsed() >= LOGIN_WINDOW || failures < free {
            return Duration::ZERO;
        }
        let doublings = (failures - free).min(8);
        Duration::from_secs(1 << doublings).min(ACCOUNT_DELAY_MAX)
    }

    /// The client a request comes from: its peer, unless the peer is a
    /// trusted proxy; then the nearest address in `X-Forwarded-For` (or
    /// `Forwarded`) that is not a trusted proxy itself. Forged entries
    /// further left are never read.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let forwarded = forwarded_for(headers);
        forwarded
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .copied()
            .unwrap_or(peer)
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt of `client`, if it has one left.
    fn reserve(&self, client: IpAddr) -> Result<(), NotChecked> {
        let mut failures = self.lock_failures();
        let now = Instant::now();
        failures.retain(|_, (_, since)| now.duration_since(*since) < LOGIN_WINDOW);
        let (count, since) = failures.entry(client).or_insert((0, now));
        if *count >= self.login_attempts {
            return Err(NotChecked::Throttled(
                LOGIN_WINDOW.saturating_sub(now.duration_since(*since)),
            ));
        }
        *count += 1;
        Ok(())
    }

    /// Gives back an attempt that was not checked.
    fn give_back(&self, client: IpAddr) {
        if let Some((count, _)) = self.lock_failures().get_mut(&client) {
            *count = count.saturating_sub(1);
        }
    }

    fn idle_ms(&self) -> i64 {
        i64::try_from(self.session_idle.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Argon2id with the crate's recommended parameters, off the async runtime.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        password_auth::generate_hash(password.expose_secret().as_bytes())
    })
    .await
    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// The addresses of `X-Forwarded-For`, or else of `Forwarded`'s `for=`,
/// nearest last; empty when either is malformed (then the peer counts).
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
            .collect()
    };
    let parse = |text: &str| -> Option<IpAddr> {
        let text = text.trim().trim_matches('"');
        // `[2001:db8::1]:4711`, `192.0.2.1:4711`, or the bare address.
        text.parse::<IpAddr>()
            .ok()
            .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
            .or_else(|| {
                text.strip_prefix('[')
                    .and_then(|t| t.split(']').next())
                    .and_then(|t| t.parse().ok())
            })
    };
    let xff = values("x-forwarded-for");
    if !xff.is_empty() {
        return xff
            .iter()
            .map(|p| parse(p))
            .collect::<Option<_>>()
            .unwrap_or_default();
    }
    values("forwarded")
        .iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.to_owned())
            })
        })
        .map(|value| parse(&value))
        .collect::<Option<_>>()
        .unwrap_or_default()
}

/// Whether `password` matches `phc` (an Argon2 PHC string), working in
/// `memory` (grown to what the hash's parameters need, and kept).
fn verify_in(password: &[u8], phc: &str, memory: &mut Vec<argon2::Block>) -> bool {
    use argon2::password_hash::PasswordHash;
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        argon2::Algorithm::try_from(parsed.algorithm),
        argon2::Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(argon2::Version::default()), argon2::Version::try_from);
    let Ok(version) = version else {
        return false;
    };
    let mut salt_bytes = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    memory.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    argon2::Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
        .is_ok()
        && out.len() == expected.len()
        && out
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sessions are stored by digest: a copy of the database opens no session.
fn session_digest(id: &str) -> String {
    hex::encode(digest(id))
}

/// Refuses state-changing requests a browser sends from another origin:
/// `Sec-Fetch-Site` other than same-origin/none, or an `Origin` that is not
/// this host. Requests with neither header (curl, scripts) pass.
pub async fn same_origin_only(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || request.uri().path().starts_with("/webhooks/") {
        return next.run(request).await;
    }
    let headers = request.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return AppError::Forbidden("cross-site request refused".into()).into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| url::Url::parse(o).ok())
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_owned(),
                })
            });
        if origin_host.is_none() || origin_host.as_deref() != host {
            return AppError::Forbidden("cross-origin request refused".into()).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_memory_check_agrees_with_password_auth() {
        let hash = password_auth::generate_hash("correct horse");
        let mut memory = Vec::new();
        assert!(verify_in(b"correct horse", &hash, &mut memory));
        assert!(!verify_in(b"correct horsf", &hash, &mut memory));
        assert!(!verify_in(b"", &hash, &mut memory));
        // The memory is reused as it is.
        assert_eq!(memory.len(), 19 * 1024);
        assert!(verify_in(b"correct horse", &hash, &mut memory));
        assert!(!verify_in(b"correct horse", "not a hash", &mut memory));
        assert!(!verify_in(
            b"correct horse",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$",
            &mut memory
        ));
    }
}
