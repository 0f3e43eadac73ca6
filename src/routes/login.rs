//! The login page, the login itself and the logout: the HTTP side of
//! [`crate::auth`], which keeps the mechanism (hashing, throttling,
//! sessions).

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;

use super::extract::{after_login, query_param};
use crate::auth::{NotChecked, SESSION_COOKIE};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views;
use crate::views::login::{Failure, Filled};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

async fn login_page(
    headers: HeaderMap,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.as_deref();
    let next = query_param(query, "next");
    let form = Filled {
        username: "",
        next: next.as_deref().map(|n| after_login(Some(n))),
    };
    let failure = query_param(query, "expired").map(|_| Failure::Expired);
    views::login::page(state.lang_for(&headers), failure, form).into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    /// The page to go on to (see [`after_login`]).
    #[serde(default)]
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let auth = &state.auth;
    let lang: Lang = state.lang_for(&headers);
    let Ok(Form(form)) = form else {
        return refused(
            StatusCode::BAD_REQUEST,
            None,
            lang,
            Failure::Wrong,
            Filled::default(),
        );
    };
    // What the page keeps after a refusal: the user name, where to go.
    let filled = Filled {
        username: &form.username,
        next: form.next.as_deref().map(|n| after_login(Some(n))),
    };
    let client = auth.client(peer.ip(), &headers);
    match auth.attempt(client, &form.username, form.password).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(%client, "failed admin login");
            return refused(StatusCode::UNAUTHORIZED, None, lang, Failure::Wrong, filled);
        }
        Err(NotChecked::Throttled(wait)) => {
            let secs = wait.as_secs().max(1);
            return refused(
                StatusCode::TOO_MANY_REQUESTS,
                Some(secs),
                lang,
                Failure::Throttled { secs },
                filled,
            );
        }
        Err(NotChecked::Busy) => {
            return crate::error::noted(
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(2),
                    lang,
                    Failure::Busy,
                    filled,
                ),
                tracing::Level::WARN,
                format!("login of {client} refused: every password check was busy"),
            );
        }
    }
    let old = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned());
    let id = match auth.open_session(&*state.store, old.as_deref()).await {
        Ok(id) => id,
        Err(error) if !error.is_unavailable() => return AppError::from(error).into_response(),
        Err(error) => {
            // Said on the page, not as JSON: the browser posted a form.
            return crate::error::noted(
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(5),
                    lang,
                    Failure::Unavailable,
                    filled,
                ),
                tracing::Level::WARN,
                format!("cannot store a session: {error}"),
            );
        }
    };
    let cookie = auth.session_cookie(id);
    let next = after_login(form.next.as_deref()).to_owned();
    (jar.add(cookie), Redirect::to(&next)).into_response()
}

async fn logout(State(state): State<AppState>, jar: CookieJar) -> Response {
    if let Some(cookie) = jar.get(SESSION_COOKIE)
        && let Err(error) = state
            .auth
            .close_session(&*state.store, cookie.value())
            .await
    {
        return AppError::from(error).into_response();
    }
    let gone = Cookie::build((SESSION_COOKIE, "")).path("/").build();
    (jar.remove(gone), Redirect::to("/login")).into_response()
}

/// The login page again, saying why, with `status` and, when the admin is
/// to wait, `Retry-After`.
fn refused(
    status: StatusCode,
    retry_after: Option<u64>,
    lang: Lang,
    why: Failure,
    form: Filled<'_>,
) -> Response {
    let mut response = (status, views::login::page(lang, Some(why), form)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
