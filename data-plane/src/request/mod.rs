//! Everything about a request before a flow runs: project resolution,
//! client facts, token transport, CSRF, CORS and rate limits.

pub mod caller;
pub mod client;
pub mod cors;
pub mod csrf;
pub mod limits;
pub mod resolve;
pub mod transport;
