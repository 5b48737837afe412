//! Klaxon's integration tests, built as one test binary: each module is one file beside this
//! one (`delivery.rs`, `console.rs`, …) and runs a real server. One binary links the server
//! once instead of once per file, which took minutes off every build of the test suite; the
//! test runner still gives every test a process of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

mod audit;
mod backup;
mod calendar;
mod calendars;
mod channels;
mod chatbots;
mod cli;
mod console;
mod console_account;
mod console_incident_fields;
mod console_noise;
mod console_schedules;
mod console_ticket_sync;
mod console_views;
mod contact_change;
mod contract;
mod crash;
mod custom_actions;
mod delivery;
mod dingtalk_app;
mod directory;
mod email_changes;
mod enrichment;
mod escalation;
mod export;
mod feishu;
mod field_mapping;
mod fields;
mod flapping;
mod grouping;
mod http;
mod http_pull;
mod insight;
mod isolation;
mod label_suggestions;
mod lookups;
mod mapping_api;
mod noise;
mod password_reset;
mod permissions;
mod pipeline;
mod preferences;
mod real_prometheus;
mod related_changes;
mod retention;
mod routing;
mod saas;
mod saas_agreements;
mod saas_governance;
mod saas_grants;
mod saas_identity;
mod saas_licences;
mod saas_month;
mod saas_registration;
mod saas_sla;
mod saas_support;
mod saas_termination;
mod saas_transfers;
mod schedules;
mod secrets;
mod signin;
mod signin_code;
mod slack;
mod sources;
mod sso;
mod sso_cas;
mod sso_ldap;
mod sso_saml;
mod teams_app;
mod ticket_sync;
mod two_nodes;
mod war_room;
mod webhooks;
mod wecom;
