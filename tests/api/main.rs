//! calscan's integration tests: one binary, one file per feature. Everything
//! talks HTTP on 127.0.0.1; Calendly is the built-in simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod adopt;
mod browser;
mod calendly_client;
mod cli;
mod demo;
mod faults;
mod helpers;
mod incremental;
mod instances;
mod metrics;
mod notify;
mod openapi;
mod outage;
mod pages;
mod parsing;
mod proxy;
mod scans;
mod schedule;
mod simulator;
mod start;
mod terminal;
mod upgrade;
mod webhooks;
