//! Requests whose body does not decode are the caller's fault: tonic answers them `INTERNAL`
//! (prost's decode errors, a message cut short, no message at all); this layer answers
//! `INVALID_ARGUMENT` instead, naming the field where prost names it (`spec.goal: invalid string
//! value: data is not UTF-8 encoded`). It wraps every service of the gateway, so every RPC is
//! covered; a handler's own statuses pass through unchanged.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::{Code, Status};

/// How prost's `DecodeError` begins (tonic-prost turns it into `INTERNAL` with this text).
const PROST_DECODE_ERROR: &str = "failed to decode Protobuf message: ";
/// tonic's answer to a body that ends inside a message frame.
const CUT_SHORT: &str = "Unexpected EOF decoding stream.";
/// tonic's answer to a unary call whose body holds no message.
const NO_MESSAGE: &str = "Missing request message.";

/// Wraps the gateway's routes so that undecodable requests answer `INVALID_ARGUMENT`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeErrorLayer;

impl<S> tower::Layer<S> for DecodeErrorLayer {
    type Service = DecodeErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeErrors { inner }
    }
}

/// The routes behind [`DecodeErrorLayer`].
#[derive(Debug, Clone)]
pub struct DecodeErrors<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for DecodeErrors<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            // A request that did not decode is answered at once: its status is in the headers.
            let reclassified = Status::from_header_map(response.headers()).and_then(|s| client_error(&s));
            Ok(match reclassified {
                Some(status) => {
                    tracing::debug!(message = status.message(), "undecodable request");
                    status.into_http()
                }
                None => response,
            })
        })
    }
}

/// The `INVALID_ARGUMENT` a decoding failure of the request stands for, if `status` is one.
pub fn client_error(status: &Status) -> Option<Status> {
    if status.code() != Code::Internal {
        return None;
    }
    let message = status.message();
    if let Some(detail) = message.strip_prefix(PROST_DECODE_ERROR) {
        return Some(Status::invalid_argument(field_first(detail)));
    }
    match message {
        CUT_SHORT => Some(Status::invalid_argument("request body: a message frame is cut short")),
        NO_MESSAGE => Some(Status::invalid_argument("request body: no request message")),
        _ => None,
    }
}

/// Turns prost's `Inner.field: Outer.field: what went wrong` (innermost first) into
/// `field.field: what went wrong (not a valid Outer)`; without a field, `request body: …`.
fn field_first(detail: &str) -> String {
    let mut fields = Vec::new();
    let mut outer = None;
    let mut rest = detail;
    while let Some((segment, after)) = rest.split_once(": ") {
        let Some((message, field)) = segment.split_once('.') else { break };
        let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !word(message) || !word(field) {
            break;
        }
        fields.push(field);
        outer = Some(message);
        rest = after;
    }
    match outer {
        Some(message) => {
            fields.reverse();
            format!("{}: {rest} (the request is not a valid {message})", fields.join("."))
        }
        None => format!("request body: {rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_error_names_the_field_from_the_outside_in() {
        let status = Status::internal(
            "failed to decode Protobuf message: RunSpec.goal: SubmitRunRequest.spec: invalid string value: data is not UTF-8 encoded",
        );
        let mapped = client_error(&status).expect("a client error");
        assert_eq!(mapped.code(), Code::InvalidArgument);
        assert_eq!(
            mapped.message(),
            "spec.goal: invalid string value: data is not UTF-8 encoded (the request is not a valid SubmitRunRequest)"
        );
        let bare = client_error(&Status::internal("failed to decode Protobuf message: invalid wire type value: 7"));
        assert_eq!(bare.unwrap().message(), "request body: invalid wire type value: 7");
    }

    #[test]
    fn framing_errors_are_the_callers_and_other_statuses_pass() {
        assert_eq!(client_error(&Status::internal(CUT_SHORT)).unwrap().code(), Code::InvalidArgument);
        assert_eq!(client_error(&Status::internal(NO_MESSAGE)).unwrap().code(), Code::InvalidArgument);
        assert!(client_error(&Status::internal("the call did not pass the auth layer")).is_none());
        assert!(client_error(&Status::not_found("failed to decode Protobuf message: x")).is_none());
    }
}
