//! Server-rendered HTML (maud): no HTML in handlers.

pub mod login;
