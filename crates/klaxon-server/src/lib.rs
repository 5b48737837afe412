//! Klaxon's HTTP server and worker runtime.

pub mod config;

pub use config::Config;
