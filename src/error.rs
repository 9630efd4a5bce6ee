//! The one error type of the domain. `core` returns these, with no HTTP in them: each API
//! dialect maps a kind to its status code and body shape (`api::dialect`). Internal errors keep
//! their detail for the log and show a generic message.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    /// Bad input. `field` names the offending field or parameter when there is one.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    /// Bad input in several fields at once, each with its own message.
    #[error("{}", .0.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<FieldError>),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Locked(String),
    /// The server's disk is full.
    #[error("{0}")]
    InsufficientStorage(String),
    /// An `If-Match` precondition did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A configured limit (devices, storage) would be exceeded.
    #[error("{0}")]
    LimitReached(String),
    /// Well-formed but semantically refused (Mender answers these with 422).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Something the server relies on (a device's remote session) failed or answered wrongly.
    #[error("{0}")]
    BadGateway(String),
    /// Something the server relies on (a device's remote session) did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
    /// The operation exists in the API but this resource does not support it (a method a path
    /// does not answer).
    #[error("{0}")]
    Unsupported(String),
    /// The operation is part of an API this server speaks but has no meaning or no
    /// implementation here; the message says why.
    #[error("{0}")]
    NotImplemented(String),
    /// Detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::Invalid {
            field: None,
            message: message.into(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }

    /// The message a client may see.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// The offending fields of bad input, with what is wrong with each.
    pub fn fields(&self) -> Vec<(&str, &str)> {
        match self {
            Error::Invalid {
                field: Some(f),
                message,
            } => vec![(f.as_str(), message.as_str())],
            Error::InvalidFields(list) => list
                .iter()
                .map(|f| (f.field.as_str(), f.message.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Internal(format!("database: {e}"))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("blocking task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_bad_input() {
        let e = Error::invalid("email", "email is required");
        assert_eq!(e.fields(), vec![("email", "email is required")]);
        let many = Error::InvalidFields(vec![
            FieldError {
                field: "a".into(),
                message: "a is short".into(),
            },
            FieldError {
                field: "b".into(),
                message: "b is long".into(),
            },
        ]);
        assert_eq!(many.to_string(), "a is short; b is long");
        assert_eq!(many.fields().len(), 2);
        assert!(Error::bad_request("x").fields().is_empty());
    }

    #[test]
    fn internal_detail_is_hidden() {
        let e = Error::internal("disk on fire at /secret/path");
        assert_eq!(e.public_message(), "internal error");
    }
}
