//! One typed error for every refusal the service-agreement rules can give.
//!
//! A refusal never changes anything: every operation that returns `Err` leaves its input
//! (ledger, pool, book …) exactly as it was.

use rust_decimal::Decimal;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaasError {
    /// Bad input: names the field and what is wrong with it.
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The rule group is switched off in this deployment mode or billing profile (SVC-401/403).
    #[error("{what} does not apply: {why}")]
    NotApplicable {
        what: &'static str,
        why: &'static str,
    },
    /// Date arithmetic left jiff's supported range.
    #[error("date arithmetic out of range: {0}")]
    Time(String),
    /// A state transition the SVC-021 table does not allow.
    #[error("transition {event} is not allowed from state {from}")]
    IllegalTransition { from: String, event: String },
    /// Cash would go below zero.
    #[error("insufficient funds: {needed} needed, {available} available")]
    InsufficientFunds { needed: Decimal, available: Decimal },
    /// `funds_frozen` is set (SVC-089).
    #[error("funds are frozen: only debt payment is allowed")]
    FundsFrozen,
    /// A ledger posting would break a ledger invariant; the posting is refused.
    #[error("ledger invariant: {0}")]
    LedgerInvariant(String),
    #[error("unknown {what} {id}")]
    Unknown { what: &'static str, id: u64 },
    /// No free licence for a licensed action (SVC-055: Open API answers 400 `NoLicense`).
    #[error("NoLicense: no free licence in the pool of {capacity}; an admin can buy or free one")]
    NoLicense { capacity: u32 },
    /// A refusal by a rule, with the rule id.
    #[error("{rule}: {message}")]
    Refused { rule: &'static str, message: String },
}

impl SaasError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        SaasError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn refused(rule: &'static str, message: impl Into<String>) -> Self {
        SaasError::Refused {
            rule,
            message: message.into(),
        }
    }

    /// How the Open API answers this refusal (HTTP status, error code of
    /// openapi-compat.md 1.5), so the server slice maps every rule the same way:
    /// `NoLicense` is 400 `NoLicense` (SVC-055); bad input 400 `InvalidParameter`; missing
    /// funds 402 `BalanceNotEnough` (the Flashduty billing code); any other refusal by a
    /// rule 400 `BadRequest` with the rule id in the message. Nothing here is a 5xx: every
    /// refusal leaves the state unchanged.
    pub fn api_answer(&self) -> (u16, &'static str) {
        match self {
            SaasError::NoLicense { .. } => (400, "NoLicense"),
            SaasError::Invalid { .. }
            | SaasError::Unknown { .. }
            | SaasError::Time(_)
            | SaasError::NotApplicable { .. } => (400, "InvalidParameter"),
            SaasError::InsufficientFunds { .. } => (402, "BalanceNotEnough"),
            SaasError::FundsFrozen
            | SaasError::Refused { .. }
            | SaasError::IllegalTransition { .. }
            | SaasError::LedgerInvariant(_) => (400, "BadRequest"),
        }
    }
}

impl From<jiff::Error> for SaasError {
    fn from(e: jiff::Error) -> Self {
        SaasError::Time(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, SaasError>;
