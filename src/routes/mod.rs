//! One router per feature, merged in `app::router`.

pub mod compat;
pub mod customers;
pub mod events;
pub mod extract;
pub mod health;
pub mod login;
pub mod openapi;
pub mod pages;
pub mod scans;
pub mod webhooks;
