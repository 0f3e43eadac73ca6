//! The login form.

use maud::{DOCTYPE, Markup, html};

use crate::i18n::Lang;

/// Why the last attempt failed.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    Wrong,
    Throttled,
}

pub fn page(lang: Lang, failure: Option<Failure>) -> Markup {
    let de = lang == Lang::De;
    let t = |german: &'static str, english: &'static str| if de { german } else { english };
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "calscan – " (t("Anmelden", "Log in")) }
                style { "body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}label,input,button{display:block;width:100%;margin:.4rem 0}input,button{padding:.6rem;font-size:1rem}p.error{color:#a40000}" }
            }
            body {
                h1 { "calscan" }
                @if let Some(failure) = failure {
                    p.error role="alert" {
                        @match failure {
                            Failure::Wrong => (t("Benutzername oder Passwort ist falsch.", "Wrong user name or password.")),
                            Failure::Throttled => (t("Zu viele Fehlversuche. Bitte später erneut versuchen.", "Too many failed attempts. Please try again later.")),
                        }
                    }
                }
                form method="post" action="/login" {
                    label for="username" { (t("Benutzername", "User name")) }
                    input #username name="username" autocomplete="username" required autofocus;
                    label for="password" { (t("Passwort", "Password")) }
                    input #password name="password" type="password" autocomplete="current-password" required;
                    button type="submit" { (t("Anmelden", "Log in")) }
                }
            }
        }
    }
}
