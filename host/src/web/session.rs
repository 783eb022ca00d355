//! The browser's side of signing in: the session cookie, the extractors
//! that resolve it, and the CSRF checks every state-changing form passes.
//!
//! The session cookie is `HttpOnly` and `SameSite=Lax`, and `Secure` (with
//! the `__Host-` prefix) when the server's public URL is https. Forms of a
//! signed-in person carry the session's CSRF token; the forms shown before
//! signing in (sign-in, accepting an invite) carry a token that must match a
//! short-lived `SameSite=Strict` cookie. A request whose token does not match
//! changes nothing.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri};
use axum::http::header::{COOKIE, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Redirect, Response};

use super::PageError;
use crate::domain::sessions::{self, Current};
use crate::secrets;
use crate::state::AppState;

/// The cookie that carries the session secret.
pub fn session_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-vigilo_session"
    } else {
        "vigilo_session"
    }
}

/// The cookie that marks a browser as a known device of the account that
/// last signed in with it (see [`crate::domain::sessions`]).
pub fn device_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-vigilo_device"
    } else {
        "vigilo_device"
    }
}

/// `Set-Cookie` for a known-device `value`, kept as long as the server
/// honours it. `SameSite=Strict`: only the sign-in form, on this site,
/// needs it.
pub fn device_cookie(state: &AppState, value: &str) -> Option<HeaderValue> {
    let max_age = sessions::DEVICE_DAYS * 86_400;
    let attributes = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{attributes}",
        device_cookie_name(state)
    ))
    .ok()
}

/// The cookie that carries the token of forms shown before signing in.
fn form_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-vigilo_form"
    } else {
        "vigilo_form"
    }
}

fn secure(state: &AppState) -> bool {
    state.public_url.starts_with("https://")
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for the session `secret`, for as long as the session lasts.
pub fn session_cookie(state: &AppState, secret: &str) -> HeaderValue {
    let max_age = state.config.session_lifetime_hours.saturating_mul(3600);
    let attributes = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{attributes}",
        session_cookie_name(state)
    ))
    .expect("a session secret is a valid header value")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(state: &AppState) -> HeaderValue {
    let attributes = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{attributes}",
        session_cookie_name(state)
    ))
    .expect("a valid header value")
}

/// The client's address (the peer of the connection).
pub fn client(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The request's `User-Agent`.
pub fn user_agent(parts: &Parts) -> String {
    parts
        .headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A signed-in person. Pages that need one take it; without a live session
/// the browser is sent to `/login`, and back afterwards.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Current);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match MaybeSignedIn::from_request_parts(parts, state).await {
            Ok(MaybeSignedIn(Some(current))) => Ok(SignedIn(current)),
            Ok(MaybeSignedIn(None)) => {
                let here = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map(|u| u.0.to_string())
                    .unwrap_or_else(|| parts.uri.to_string());
                let target = if parts.method == axum::http::Method::GET {
                    format!("/login?next={}", urlencode(&here))
                } else {
                    "/login".to_owned()
                };
                Err(Redirect::to(&target).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The signed-in person, if any.
pub struct MaybeSignedIn(pub Option<Current>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Some(secret) = cookie(parts, session_cookie_name(state)) else {
            return Ok(MaybeSignedIn(None));
        };
        match sessions::resolve(&state.store, &state.config, secret).await {
            Ok(current) => Ok(MaybeSignedIn(Some(current))),
            Err(crate::domain::DomainError::Unauthenticated { .. }) => Ok(MaybeSignedIn(None)),
            Err(e) => Err(e.into()),
        }
    }
}

/// Fails unless `token` is the session's CSRF token.
pub fn check_csrf(current: &Current, token: &str) -> Result<(), PageError> {
    if secrets::same(&current.csrf, token) {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}

/// A token for a form shown before signing in, and the `Set-Cookie` that
/// pairs it with this browser.
pub fn form_token(state: &AppState) -> (String, HeaderValue) {
    let token = secrets::generate("vgf_").plaintext;
    let attributes = if secure(state) { "; Secure" } else { "" };
    let cookie = HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{attributes}",
        form_cookie_name(state)
    ))
    .expect("a valid header value");
    (token, cookie)
}

/// Fails unless `token` matches this browser's form cookie.
pub fn check_form_token(parts: &Parts, state: &AppState, token: &str) -> Result<(), PageError> {
    match cookie(parts, form_cookie_name(state)) {
        Some(expected) if !token.is_empty() && secrets::same(expected, token) => Ok(()),
        _ => Err(PageError::Csrf),
    }
}

/// Adds `Set-Cookie: value` to `response`.
pub fn with_cookie(mut response: Response, value: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, value);
    response
}

/// `text` for a URL's query string.
pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `next` as a path on this server, else `/`: where to go after signing
/// in. It must start with one `/`, and hold no control character (TAB,
/// CR, LF and the rest), space or backslash, also once percent-decoded (so
/// no encoded form slips through); a browser reading the result must land
/// on this origin, which is checked by resolving it the way browsers do. The
/// path comes back normalised, so it is always a valid `Location`.
pub fn safe_next(next: Option<&str>) -> String {
    next.and_then(local_path).unwrap_or_else(|| "/".to_owned())
}

/// `next` as a normalised path on this origin, if it is one.
fn local_path(next: &str) -> Option<String> {
    let refused = |text: &str| {
        text.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    };
    let decoded = percent_encoding::percent_decode_str(next).decode_utf8_lossy();
    if !next.starts_with('/')
        || next.starts_with("//")
        || refused(next)
        || refused(&decoded)
        || decoded.starts_with("//")
    {
        return None;
    }
    let origin = url::Url::parse("http://vigilo.invalid/").ok()?;
    let resolved = origin.join(next).ok()?;
    if resolved.origin() != origin.origin() {
        return None;
    }
    let mut path = resolved.path().to_owned();
    if let Some(query) = resolved.query() {
        path.push('?');
        path.push_str(query);
    }
    (path.starts_with('/') && !path.starts_with("//")).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_a_path_on_this_origin_or_the_home_page() {
        for good in ["/w/acme", "/w/acme/items?kind=task&page=2", "/"] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "/\t/evil.example/",
            "/\u{b}/x",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "/a\nb",
            "https://evil.example/",
            "evil.example",
            "/ spaced",
            "/\u{85}x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
