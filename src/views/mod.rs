//! Server-rendered HTML (maud): the shared layout and small components; no
//! HTML in handlers. Everything from Calendly goes through maud's escaping,
//! so names and messages are always text.

pub mod login;
pub mod pages;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::i18n::Lang;

/// A text in the page's language.
pub fn t(lang: Lang, german: &'static str, english: &'static str) -> &'static str {
    match lang {
        Lang::De => german,
        Lang::En => english,
    }
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Customers,
    Scans,
    None,
}

/// The page frame: head, navigation with logout, main content.
pub fn layout(lang: Lang, title: &str, nav: Nav, logged_in: bool, content: Markup) -> Markup {
    let current = |n: Nav| if n == nav { Some("page") } else { None };
    html! {
        (DOCTYPE)
        html lang=(lang.to_string()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – calscan" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.top {
                    a.brand href="/admin/customer_search" { "calscan" }
                    @if logged_in {
                        nav aria-label=(t(lang, "Hauptnavigation", "Main navigation")) {
                            a href="/admin/customer_search" aria-current=[current(Nav::Customers)] {
                                (t(lang, "Kunden", "Customers"))
                            }
                            a href="/admin/scans" aria-current=[current(Nav::Scans)] {
                                (t(lang, "Scans", "Scans"))
                            }
                        }
                        form.logout method="post" action="/logout" {
                            button type="submit" { (t(lang, "Abmelden", "Log out")) }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// The error page for 404 and 500, in the same look.
pub fn error_page(lang: Lang, status: u16, logged_in: bool) -> Markup {
    let (title, text) = match status {
        404 => (
            t(lang, "Seite nicht gefunden", "Page not found"),
            t(lang, "Diese Seite gibt es nicht.", "There is no such page."),
        ),
        _ => (
            t(lang, "Fehler", "Error"),
            t(
                lang,
                "Etwas ist schiefgegangen. Bitte später erneut versuchen.",
                "Something went wrong. Please try again later.",
            ),
        ),
    };
    layout(
        lang,
        title,
        Nav::None,
        logged_in,
        html! {
            h1 { (title) }
            p { (text) }
            p { a href="/admin/customer_search" { (t(lang, "Zur Kundenübersicht", "To the customers")) } }
        },
    )
}

/// Serializes `value` into a `<script type="application/json">`, escaped so
/// no text in it can end the script element.
pub fn json_script(id: &str, value: &serde_json::Value) -> Markup {
    let json = value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    html! { script type="application/json" id=(id) { (PreEscaped(json)) } }
}
