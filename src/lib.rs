//! calscan imports a Calendly organization's invitees as customers and shows
//! the scan's progress live.

pub mod calendly;
pub mod config;
pub mod telemetry;
