//! `http.request`: a plugin's outbound HTTP request, made by the server
//! under its egress policy.

use std::time::Duration;

use vigilo_sdk::{HttpRequest, HttpResponse};

use super::{HostCalls, Refusal, HTTP_MAX_BODY, HTTP_MAX_REQUEST_BODY, HTTP_TIMEOUT};

impl HostCalls {
    /// Makes a plugin's outbound request under the server's egress policy
    /// (the rules of playbook webhook steps: no loopback or private
    /// destination unless the operator allowed it), connecting only to the
    /// addresses that were checked, never following redirects, within
    /// [`HTTP_TIMEOUT`] and with the body cut at [`HTTP_MAX_BODY`].
    pub(super) fn http_request(&self, request: HttpRequest) -> Result<HttpResponse, Refusal> {
        if !(request.url.starts_with("https://") || request.url.starts_with("http://")) {
            return Err(Refusal::Asked(
                "the URL must start with http:// or https://".into(),
            ));
        }
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > HTTP_MAX_REQUEST_BODY)
        {
            return Err(Refusal::Asked(format!(
                "the request body is larger than {HTTP_MAX_REQUEST_BODY} bytes"
            )));
        }
        if let Some(bad) = request.headers.iter().find(|h| {
            ["host", "content-length", "transfer-encoding", "connection"]
                .contains(&h.name.to_ascii_lowercase().as_str())
        }) {
            return Err(Refusal::Asked(format!(
                "the header `{}` is set by the server, not the plugin",
                bad.name
            )));
        }
        // The answer never repeats the addresses a name resolved to.
        let addrs = self.policy.resolve(&request.url).map_err(Refusal::Asked)?;
        let timeout = request
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(HTTP_TIMEOUT)
            .min(HTTP_TIMEOUT);
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .resolver(move |_: &str| Ok(addrs.clone()))
            .build();
        let mut call = agent
            .request(request.method.as_str(), &request.url)
            .set("User-Agent", concat!("vigilo/", env!("CARGO_PKG_VERSION")));
        for header in &request.headers {
            call = call.set(&header.name, &header.value);
        }
        let outcome = match &request.body {
            Some(body) => call.send_string(body),
            None => call.call(),
        };
        let response = match outcome {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(e)) => {
                return Err(Refusal::Asked(format!(
                    "the request could not be made: {}",
                    e.kind()
                )))
            }
        };
        let max_body = usize::try_from(HTTP_MAX_BODY).unwrap_or(usize::MAX);
        HttpResponse::from_ureq(response, max_body)
            .map_err(|e| Refusal::Asked(format!("the response could not be read: {}", e.kind())))
    }
}
