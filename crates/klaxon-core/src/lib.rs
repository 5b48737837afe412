//! Klaxon's pure domain.
//!
//! Everything here is a function over plain data with `now` passed in: no I/O, no clock, no
//! randomness (ids are built from random bytes the caller supplies). The store and the server
//! wire these decisions to durable state.

pub mod change;
pub mod condition;
pub mod directory;
pub mod enrichment;
pub mod error;
pub mod field_mapping;
pub mod flapping;
pub mod grouping;
pub mod ids;
pub mod insight;
pub mod label_suggest;
pub mod links;
pub mod login_code;
pub mod merge;
pub mod model;
pub mod noise;
pub mod one_time_code;
pub mod permissions;
pub mod pipeline;
pub mod ratelimit;
pub mod response;
pub mod retention;
pub mod routing;
pub mod saml;
pub mod schedule;
pub mod sso;
pub mod standard;
pub mod template;
pub mod ticket_sync;
pub mod ticket_sync_sdp;
pub mod webhook;
