//! Everything Calendly: the API client, its models and errors, webhook
//! signatures, and the simulator that stands in for Calendly in tests and
//! the demo.

mod client;
mod error;
pub mod model;
mod pacer;
pub mod simulator;
pub mod webhook;

pub use client::{CalendlyClient, CallStats, ClientSettings, EventInvitees, PAGE_SIZE};
pub use error::CalendlyError;
pub use pacer::{Budget, RateHeaders};
pub use simulator::{Fault, SimStats, Simulator, SimulatorConfig};
