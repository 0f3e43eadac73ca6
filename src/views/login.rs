//! The login form.

use maud::{Markup, html};

use super::{Nav, layout, t};
use crate::i18n::Lang;

/// Why the last attempt failed.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    Wrong,
    /// Too many failures: the client may try again in `secs`.
    Throttled {
        secs: u64,
    },
    /// Too many logins at once.
    Busy,
    /// The database cannot take the session now.
    Unavailable,
    /// The admin's session ended (unused too long, or too old).
    Expired,
}

/// What the form holds when it is shown again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filled<'a> {
    pub username: &'a str,
    /// The page the admin goes on to after logging in.
    pub next: Option<&'a str>,
}

pub fn page(lang: Lang, failure: Option<Failure>, form: Filled<'_>) -> Markup {
    let title = t(lang, "Anmelden", "Log in");
    layout(
        lang,
        title,
        Nav::None,
        false,
        html! {
            section.login {
                h1 { (title) }
                @if let Some(failure) = failure {
                    p.error role="alert" {
                        @match failure {
                            Failure::Wrong => (t(lang, "Benutzername oder Passwort ist falsch.", "Wrong user name or password.")),
                            Failure::Throttled { secs } => (throttled(lang, secs)),
                            Failure::Busy => (t(lang, "Gerade melden sich zu viele an. Bitte in ein paar Sekunden erneut versuchen.", "Too many logins at once. Please try again in a few seconds.")),
                            Failure::Unavailable => (t(lang, "Die Datenbank ist gerade nicht erreichbar. Bitte gleich noch einmal versuchen.", "The database cannot be reached just now. Please try again in a moment.")),
                            Failure::Expired => (t(lang, "Die Sitzung ist abgelaufen. Bitte erneut anmelden – danach geht es auf der Seite weiter, auf der du warst.", "Your session has ended. Please log in again to go back to the page you were on.")),
                        }
                    }
                }
                form method="post" action="/login" {
                    @if let Some(next) = form.next {
                        input type="hidden" name="next" value=(next);
                    }
                    @let known = !form.username.is_empty();
                    label for="username" { (t(lang, "Benutzername", "User name")) }
                    input #username type="text" name="username" value=(form.username) autocomplete="username" required autofocus[!known];
                    label for="password" { (t(lang, "Passwort", "Password")) }
                    input #password name="password" type="password" autocomplete="current-password" required autofocus[known];
                    button type="submit" { (t(lang, "Anmelden", "Log in")) }
                }
            }
        },
    )
}

/// "Try again in …", in minutes once it is more than a minute.
fn throttled(lang: Lang, secs: u64) -> String {
    let minutes = secs.div_ceil(60);
    match (lang, secs > 60) {
        (Lang::De, true) => {
            format!("Zu viele Fehlversuche. Bitte in {minutes} Minuten erneut versuchen.")
        }
        (Lang::De, false) => {
            format!("Zu viele Fehlversuche. Bitte in {secs} Sekunden erneut versuchen.")
        }
        (Lang::En, true) => {
            format!("Too many failed attempts. Please try again in {minutes} minutes.")
        }
        (Lang::En, false) => {
            format!("Too many failed attempts. Please try again in {secs} seconds.")
        }
    }
}
