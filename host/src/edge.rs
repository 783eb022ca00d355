//! What both edges — the JSON API ([`crate::http`]) and the web app
//! ([`crate::web`]) — hold to alike: the security headers every answer
//! carries, and how large a body may be.

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The largest request body the API and the web app take, unless a route
/// says otherwise (a bulk invite's CSV, an uploaded template).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The Content-Security-Policy of every page: only this origin's scripts,
/// styles, images and connections; no inline code, no eval, no plugins, no
/// framing, no `<base>`, forms only to this origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The largest form a person who is not signed in may send (signing in,
/// accepting an invite): what is read before anyone is known stays small.
pub const ANONYMOUS_FORM_LIMIT: usize = 64 * 1024;

/// Adds the security headers to every response of the web app and the API
/// (the router's own answers too), and keeps pages out of caches.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    let is_page = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_page {
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-cache"));
    }
    response
}

/// The security headers every answer carries (see
/// [`security_headers`]), as header lines.
pub fn security_header_lines() -> String {
    format!(
        "content-security-policy: {}\r\nx-content-type-options: nosniff\r\n\
         x-frame-options: DENY\r\nreferrer-policy: same-origin\r\n",
        CSP
    )
}
