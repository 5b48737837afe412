//! The one error type of the schedule module. Every refusal names the offending field with a
//! JSON-path-like string (`layers[2].groups[0].members[1].person_id`), so the API can return a
//! message that tells the user exactly what to fix.

use std::fmt;

use crate::error::{ApiError, ErrorCode};

/// The spec's error categories (response.md §0.2) that schedule decisions can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleErrorKind {
    /// `invalid_argument`: bad input (RSP-228).
    InvalidArgument,
    /// `failed_precondition`: the object's state forbids the change (an override that has
    /// begun cannot be deleted, RSP-225).
    FailedPrecondition,
    /// `failed_precondition` because the object is still referenced (RSP-234, RSP-273).
    Referenced,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub kind: ScheduleErrorKind,
    /// The offending field, as a path into the request body.
    pub field: String,
    pub message: String,
}

impl ScheduleError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ScheduleError {
            kind: ScheduleErrorKind::InvalidArgument,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn precondition(field: impl Into<String>, message: impl Into<String>) -> Self {
        ScheduleError {
            kind: ScheduleErrorKind::FailedPrecondition,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn referenced(field: impl Into<String>, message: impl Into<String>) -> Self {
        ScheduleError {
            kind: ScheduleErrorKind::Referenced,
            field: field.into(),
            message: message.into(),
        }
    }

    /// An instant or date outside what the tz arithmetic can represent (years −9999..9999).
    pub(crate) fn out_of_range(field: &str) -> Self {
        ScheduleError::invalid(field, "instant out of the supported range")
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ScheduleError {}

/// openapi-compat.md 1.5: `invalid_argument` → `InvalidParameter`; `failed_precondition` →
/// `ReferenceExist` when still referenced, otherwise `BadRequest`.
impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        let code = match e.kind {
            ScheduleErrorKind::InvalidArgument => ErrorCode::InvalidParameter,
            ScheduleErrorKind::FailedPrecondition => ErrorCode::BadRequest,
            ScheduleErrorKind::Referenced => ErrorCode::ReferenceExist,
        };
        ApiError::new(code, e.to_string())
    }
}
