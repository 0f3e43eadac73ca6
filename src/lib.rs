//! calscan imports a Calendly organization's invitees as customers and shows
//! the scan's progress live.

pub mod app;
pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod calendly;
pub mod config;
pub mod error;
pub mod i18n;
pub mod metrics;
pub mod notify;
pub mod routes;
pub mod scan;
pub mod state;
pub mod store;
pub mod subscriptions;
pub mod telemetry;
pub mod terminal;
pub mod time;
pub mod views;
