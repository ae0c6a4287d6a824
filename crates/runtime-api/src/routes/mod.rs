//! Routing: each request becomes a [`Route`], each route is handled in its resource's module,
//! and every refusal is rendered by [`ApiError::into_response`].

mod extension;
mod runtime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use crate::body::{self, Collected, ReadError};
use crate::error::ApiError;
use crate::state::Shared;
use crate::types::TelemetryApi;

pub(crate) type Res = Response<Full<Bytes>>;

/// Largest body accepted on the small JSON endpoints (register, subscriptions).
const SMALL_BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
enum Route<'p> {
    RuntimeNext,
    InvocationResponse(&'p str),
    InvocationError(&'p str),
    RuntimeInitError,
    Ping,
    ExtensionRegister,
    ExtensionNext,
    ExtensionInitError,
    ExtensionExitError,
    Subscribe(TelemetryApi),
    NotFound,
    MethodNotAllowed,
}

fn classify<'p>(method: &Method, path: &'p str, extensions: bool) -> Route<'p> {
    let (route, allowed) = match path {
        "/2018-06-01/runtime/invocation/next" => (Route::RuntimeNext, Method::GET),
        "/2018-06-01/runtime/init/error" => (Route::RuntimeInitError, Method::POST),
        "/ping" => (Route::Ping, Method::GET),
        "/2020-01-01/extension/register" if extensions => (Route::ExtensionRegister, Method::POST),
        "/2020-01-01/extension/event/next" if extensions => (Route::ExtensionNext, Method::GET),
        "/2020-01-01/extension/init/error" if extensions => {
            (Route::ExtensionInitError, Method::POST)
        }
        "/2020-01-01/extension/exit/error" if extensions => {
            (Route::ExtensionExitError, Method::POST)
        }
        "/2022-07-01/telemetry" if extensions => {
            (Route::Subscribe(TelemetryApi::Telemetry), Method::PUT)
        }
        "/2020-08-15/logs" if extensions => (Route::Subscribe(TelemetryApi::Logs), Method::PUT),
        _ => {
            let answer = path
                .strip_prefix("/2018-06-01/runtime/invocation/")
                .and_then(|rest| rest.split_once('/'))
                .filter(|(id, _)| !id.is_empty());
            match answer {
                Some((id, "response")) => (Route::InvocationResponse(id), Method::POST),
                Some((id, "error")) => (Route::InvocationError(id), Method::POST),
                _ => return Route::NotFound,
            }
        }
    };
    if *method == allowed {
        route
    } else {
        Route::MethodNotAllowed
    }
}

/// Serves one request. Never fails: refusals are rendered as Lambda-style error documents.
pub(crate) async fn handle(shared: &Shared, req: Request<Incoming>) -> Res {
    // `Uri` is reference-counted: cloning it lets the route borrow the path while `req` moves.
    let uri = req.uri().clone();
    let route = classify(req.method(), uri.path(), shared.config.extensions_enabled);
    let result = match route {
        Route::RuntimeNext => runtime::next(shared).await,
        Route::InvocationResponse(id) => {
            runtime::post_result(shared, id, runtime::Answer::Response, req).await
        }
        Route::InvocationError(id) => {
            runtime::post_result(shared, id, runtime::Answer::Error, req).await
        }
        Route::RuntimeInitError => runtime::init_error(shared, req).await,
        Route::Ping => Ok(text(StatusCode::OK, "pong")),
        Route::ExtensionRegister => extension::register(shared, req).await,
        Route::ExtensionNext => extension::next(shared, req).await,
        Route::ExtensionInitError => {
            extension::post_error(shared, crate::state::ExtensionErrorKindPosted::Init, req).await
        }
        Route::ExtensionExitError => {
            extension::post_error(shared, crate::state::ExtensionErrorKindPosted::Exit, req).await
        }
        Route::Subscribe(api) => extension::subscribe(shared, api, req).await,
        Route::NotFound => Err(ApiError::NotFound(uri.path().to_owned())),
        Route::MethodNotAllowed => Err(ApiError::MethodNotAllowed),
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn text(status: StatusCode, body: &'static str) -> Res {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

/// A header's value as text; `None` when absent, empty or not UTF-8.
fn header_string(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let value = headers.get(name)?;
    let text = std::str::from_utf8(value.as_bytes()).ok()?;
    (!text.is_empty()).then(|| text.to_owned())
}

/// Reads a whole body of at most `max` bytes, as an `ApiError` on failure.
async fn read_body(body: Incoming, max: usize) -> Result<Collected, ApiError> {
    body::read_capped(body, max).await.map_err(|e| match e {
        ReadError::TooLarge { .. } => ApiError::TooLarge { max },
        ReadError::Truncated => ApiError::TruncatedRequest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            classify(&get, "/2018-06-01/runtime/invocation/next", true),
            Route::RuntimeNext
        );
        assert_eq!(
            classify(&post, "/2018-06-01/runtime/invocation/abc-1/response", true),
            Route::InvocationResponse("abc-1")
        );
        assert_eq!(
            classify(&post, "/2018-06-01/runtime/invocation/abc-1/error", true),
            Route::InvocationError("abc-1")
        );
        assert_eq!(
            classify(&post, "/2018-06-01/runtime/invocation//response", true),
            Route::NotFound
        );
        assert_eq!(
            classify(&post, "/2018-06-01/runtime/invocation/a/b/response", true),
            Route::NotFound
        );
        assert_eq!(
            classify(&post, "/2018-06-01/runtime/invocation/next", true),
            Route::MethodNotAllowed
        );
        assert_eq!(
            classify(&post, "/2020-01-01/extension/register", true),
            Route::ExtensionRegister
        );
        assert_eq!(
            classify(&post, "/2020-01-01/extension/register", false),
            Route::NotFound
        );
        assert_eq!(
            classify(&Method::PUT, "/2022-07-01/telemetry", true),
            Route::Subscribe(TelemetryApi::Telemetry)
        );
        assert_eq!(classify(&get, "/nope", true), Route::NotFound);
    }
}
