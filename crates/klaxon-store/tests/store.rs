//! The store's tests, built as one test binary: each module is one file beside this one
//! (`behaviour.rs`, `noise.rs`, …). One binary links the store once instead of once per
//! file; the test runner still gives every test a process of its own.
//!
//! Run one file's tests with a filter, e.g. `cargo nextest run -p klaxon-store -E
//! 'test(/^noise::/)'`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod harness;

mod app_keys_migration;
mod audit;
mod behaviour;
mod delivery_handoff;
mod enrichment;
mod flapping;
mod grouping;
mod im;
mod noise;
mod password_reset;
mod pipeline;
mod reminders;
mod response;
mod retention;
mod routes;
mod saas_agreements;
mod saas_halt;
mod saas_ledger;
mod saas_licences;
mod saas_renewals;
mod templates;
mod webhooks;
