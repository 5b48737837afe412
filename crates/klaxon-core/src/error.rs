//! The one error table (DESIGN.md "One error table"; ingest.md ING-009; openapi-compat.md 1.5).
//!
//! Every error Klaxon's HTTP surfaces return is an [`ApiError`]: a stable code, the message
//! that names the offending field, and the HTTP status the table gives for the surface it is
//! returned on.

use std::fmt;

/// Stable error codes, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidParameter,
    BadRequest,
    InvalidContentType,
    ResourceNotFound,
    NoLicense,
    ReferenceExist,
    Unauthorized,
    AccessDenied,
    ServiceSuspended,
    RouteNotFound,
    MethodNotAllowed,
    EntityTooLarge,
    RequestTooFrequently,
    /// 423: locked after repeated failures (openapi-compat.md 1.5; sign-in lockout).
    RequestLocked,
    InternalError,
    ServiceUnavailable,
}

/// Which HTTP surface answers: the push endpoints keep the Event API's historical statuses
/// (ING-002, ING-006), the Open API follows openapi-compat.md 1.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Push,
    OpenApi,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::InvalidParameter,
        ErrorCode::BadRequest,
        ErrorCode::InvalidContentType,
        ErrorCode::ResourceNotFound,
        ErrorCode::NoLicense,
        ErrorCode::ReferenceExist,
        ErrorCode::Unauthorized,
        ErrorCode::AccessDenied,
        ErrorCode::ServiceSuspended,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::EntityTooLarge,
        ErrorCode::RequestTooFrequently,
        ErrorCode::RequestLocked,
        ErrorCode::InternalError,
        ErrorCode::ServiceUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameter => "InvalidParameter",
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::InvalidContentType => "InvalidContentType",
            ErrorCode::ResourceNotFound => "ResourceNotFound",
            ErrorCode::NoLicense => "NoLicense",
            ErrorCode::ReferenceExist => "ReferenceExist",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::AccessDenied => "AccessDenied",
            ErrorCode::ServiceSuspended => "ServiceSuspended",
            ErrorCode::RouteNotFound => "RouteNotFound",
            ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            ErrorCode::EntityTooLarge => "EntityTooLarge",
            ErrorCode::RequestTooFrequently => "RequestTooFrequently",
            ErrorCode::RequestLocked => "RequestLocked",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The HTTP status of this code on a surface (ING-009 for pushes, openapi-compat.md 1.5).
    pub fn http_status(self, surface: Surface) -> u16 {
        match (self, surface) {
            (ErrorCode::MethodNotAllowed, Surface::Push) => 400,
            (ErrorCode::MethodNotAllowed, Surface::OpenApi) => 405,
            (
                ErrorCode::InvalidParameter
                | ErrorCode::BadRequest
                | ErrorCode::InvalidContentType
                | ErrorCode::ResourceNotFound
                | ErrorCode::NoLicense
                | ErrorCode::ReferenceExist,
                _,
            ) => 400,
            (ErrorCode::Unauthorized, _) => 401,
            (ErrorCode::AccessDenied | ErrorCode::ServiceSuspended, _) => 403,
            (ErrorCode::RouteNotFound, _) => 404,
            (ErrorCode::EntityTooLarge, _) => 413,
            (ErrorCode::RequestTooFrequently, _) => 429,
            (ErrorCode::RequestLocked, _) => 423,
            (ErrorCode::InternalError, _) => 500,
            (ErrorCode::ServiceUnavailable, _) => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Only on tenant-state refusals (ING-013).
    pub reason: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            reason: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidParameter, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InternalError, message)
    }

    /// Prefix the message, e.g. with `item 3:` for batch validation (ING-047).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix} {}", self.message);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    // spec: ING-009
    #[test]
    fn push_error_table_statuses() {
        use ErrorCode::*;
        let expected = [
            (InvalidParameter, 400),
            (InvalidContentType, 400),
            (MethodNotAllowed, 400),
            (Unauthorized, 401),
            (AccessDenied, 403),
            (ServiceSuspended, 403),
            (RequestTooFrequently, 429),
            (RouteNotFound, 404),
            (ResourceNotFound, 400),
            (NoLicense, 400),
            (InternalError, 500),
        ];
        for (code, status) in expected {
            assert_eq!(code.http_status(Surface::Push), status, "{code}");
        }
    }

    #[test]
    fn open_api_method_not_allowed_is_405() {
        assert_eq!(
            ErrorCode::MethodNotAllowed.http_status(Surface::OpenApi),
            405
        );
        assert_eq!(ErrorCode::EntityTooLarge.http_status(Surface::OpenApi), 413);
    }

    #[test]
    fn codes_are_spelled_as_on_the_wire() {
        for code in ErrorCode::ALL {
            assert_eq!(format!("{code}"), format!("{code:?}"));
        }
    }
}
