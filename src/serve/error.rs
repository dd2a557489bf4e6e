//! Every error the server answers: an HTTP status and the JSON body `{"error", "error_type"}`,
//! with TEI's error types where TEI has one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// What kind of failure, serialised as `error_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The request is well-formed JSON but its values are wrong (bad parameter, too long input,
    /// too many inputs).
    Validation,
    /// No inputs at all.
    Empty,
    /// The body is not JSON of the expected shape.
    Malformed,
    /// The tokenizer refused the input.
    Tokenizer,
    /// Over `--max-concurrent-requests`.
    Overloaded,
    /// The route needs a head the loaded model does not have.
    Unsupported,
    /// The model run failed.
    Backend,
    /// The GPU thread is gone or the device was lost.
    Unhealthy,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Validation => "validation",
            ErrorType::Empty => "empty",
            ErrorType::Malformed => "malformed",
            ErrorType::Tokenizer => "tokenizer",
            ErrorType::Overloaded => "overloaded",
            ErrorType::Unsupported => "unsupported",
            ErrorType::Backend => "backend",
            ErrorType::Unhealthy => "unhealthy",
        }
    }
}

/// An error answer. Handlers return `Result<_, ApiError>`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: ErrorType, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// 422: a value the request may not have.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Validation,
            message,
        )
    }

    /// 413: too much of something (tokens, inputs, bytes); the message names the limit.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::Validation,
            message,
        )
    }

    /// 400: nothing to do.
    pub fn empty(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorType::Empty, message)
    }

    /// 422 (400 for a body that is not JSON at all): the body does not have the route's shape.
    pub fn malformed(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(status, ErrorType::Malformed, message)
    }

    /// 500: the model run failed.
    pub fn backend(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::Backend,
            message,
        )
    }

    /// 429: over `--max-concurrent-requests`.
    pub fn overloaded(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::Overloaded,
            format!(
                "model is overloaded: {limit} requests are already being served \
                 (--max-concurrent-requests); retry later"
            ),
        )
    }

    /// 400: the route needs another kind of model.
    pub fn unsupported(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorType::Unsupported, message)
    }

    /// 503: the GPU thread cannot run anything.
    pub fn unhealthy(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Unhealthy,
            message,
        )
    }

    /// A library error from tokenizing or validating an input: the client's fault (422), named
    /// by its input index where there are several.
    pub fn from_input(err: &crate::Error, index: Option<usize>) -> ApiError {
        let at = index.map_or(String::new(), |i| format!("input {i}: "));
        match err {
            crate::Error::Tokenizer(m) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorType::Tokenizer,
                format!("{at}{m}"),
            ),
            crate::Error::Input(m) => ApiError::validation(format!("{at}{m}")),
            crate::Error::TooLarge(m) => ApiError::too_large(format!("{at}{m}")),
            other => ApiError::backend(format!("{at}{other}")),
        }
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message, "error_type": self.kind.as_str() })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.as_str())
    }
}

/// An [`ApiError`] answered in OpenAI's shape, for `/v1/embeddings`:
/// `{"error": {"message", "type", "param", "code"}}`, invalid requests as 400 like OpenAI's,
/// with wgformer's `error_type` as the `code`.
#[derive(Debug)]
pub struct OpenAiError(pub ApiError);

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        OpenAiError(e)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = match e.status {
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE => {
                StatusCode::BAD_REQUEST
            }
            s => s,
        };
        let kind = match status {
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_exceeded",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        let body = serde_json::json!({
            "error": {
                "message": e.message,
                "type": kind,
                "param": null,
                "code": e.kind.as_str(),
            }
        });
        let mut r = (status, Json(body)).into_response();
        r.extensions_mut().insert(e.kind);
        r
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        // Lets the metrics layer count errors by type without parsing bodies.
        r.extensions_mut().insert(self.kind);
        r
    }
}
