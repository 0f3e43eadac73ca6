//! The login form.

use maud::{Markup, html};

use super::{Nav, layout, t};
use crate::i18n::Lang;

/// Why the last attempt failed.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    Wrong,
    Throttled,
    /// The database cannot take the session now.
    Unavailable,
}

pub fn page(lang: Lang, failure: Option<Failure>) -> Markup {
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
                            Failure::Throttled => (t(lang, "Zu viele Fehlversuche. Bitte später erneut versuchen.", "Too many failed attempts. Please try again later.")),
                            Failure::Unavailable => (t(lang, "Die Datenbank ist gerade nicht erreichbar. Bitte gleich noch einmal versuchen.", "The database cannot be reached just now. Please try again in a moment.")),
                        }
                    }
                }
                form method="post" action="/login" {
                    label for="username" { (t(lang, "Benutzername", "User name")) }
                    input #username type="text" name="username" autocomplete="username" required autofocus;
                    label for="password" { (t(lang, "Passwort", "Password")) }
                    input #password name="password" type="password" autocomplete="current-password" required;
                    button type="submit" { (t(lang, "Anmelden", "Log in")) }
                }
            }
        },
    )
}
