//! Klaxon's service-agreement rules (spec `service-agreement.md`, rule ids SVC-xxx) as pure
//! functions and small value types: no I/O, no clock, no database. Time comes in as
//! `jiff::Timestamp` plus the operator's `billing_tz`; money is `rust_decimal::Decimal`,
//! rounded half-up exactly once where the spec posts, shows or pays an amount.
//!
//! Self-hosted mode (the default) answers "does not apply" to every billed rule: see
//! [`mode::Regime`].

pub mod agreement;
pub mod book;
pub mod calendar;
pub mod codec;
pub mod contract;
pub mod error;
pub mod governance;
pub mod grant;
pub mod lawful;
pub mod ledger;
pub mod liability;
pub mod licence;
pub mod mode;
pub mod money;
pub mod notice;
pub mod order;
pub mod overdue;
pub mod ownership;
pub mod params;
pub mod postpaid;
pub mod pricing;
pub mod providers;
pub mod purchase;
pub mod quota;
pub mod refund;
pub mod region;
pub mod registration;
pub mod sla;
pub mod state;
pub mod support;
pub mod tenant;
pub mod termination;
pub mod transfer;
pub mod trial;
pub mod unavailability;

pub use error::{Result, SaasError};
