//! A small HTTP client for the inspection commands (`sweeps`, `runs`, `best`, ...).
//!
//! `https://` servers are reached with rustls; [`Api::with_ca_cert`] trusts a private CA (or
//! a self-signed server certificate) besides the built-in roots. A TLS failure is reported
//! with what to fix ([`hyperdial_agent::client::tls_problem`]), never taken for a server that
//! is not there.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// What to do when no server answers at `base`: for a loopback URL, the `hyperdial server`
/// command that listens exactly there (its port, and the scheme's TLS options); for another
/// host, to start it there or name the right one.
pub fn start_hint(base: &str) -> String {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let https = base.starts_with("https://");
    let hostport = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse::<u16>().ok()),
        _ => (hostport, None),
    };
    let port = port.unwrap_or(if https { 443 } else { 80 });
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    if !loopback {
        return format!(
            "is `hyperdial server` running on {host}? or pass --server URL; without a server, \
             `hyperdial ui --db PATH` serves a local store"
        );
    }
    let mut command = "hyperdial server".to_string();
    if port != 8337 || host != "127.0.0.1" {
        let bind_host = if host == "[::1]" {
            "[::1]"
        } else {
            "127.0.0.1"
        };
        command.push_str(&format!(" --bind {bind_host}:{port}"));
    }
    if https {
        command.push_str(" --tls-cert CERT.pem --tls-key KEY.pem");
    }
    format!("start one with `{command}`, or pass --server URL")
}

/// The run or sweep a request path names (`/api/v1/runs/ID...`, `/api/v1/sweeps/ID...`), with
/// its id decoded, for the message of a 404.
fn missing_object(path: &str) -> Option<(&'static str, String)> {
    let (kind, rest) = if let Some(rest) = path.strip_prefix("/api/v1/runs/") {
        ("run", rest)
    } else if let Some(rest) = path.strip_prefix("/api/v1/sweeps/") {
        ("sweep", rest)
    } else {
        return None;
    };
    let id = rest.split(['/', '?']).next().filter(|id| !id.is_empty())?;
    Some((kind, percent_decode(id)))
}

/// `%XX` escapes decoded (the inverse of the commands' `urlencode`); anything else as is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server's answer outside 2xx: the status and the server's message.
#[derive(Debug)]
pub struct HttpError {
    /// The request path.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// The server's `error` text (or the body when it is not JSON).
    pub message: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} {}", self.path, self.status, self.message)
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::start_hint;

    #[test]
    fn the_start_hint_listens_where_the_client_looked() {
        assert_eq!(
            start_hint("http://127.0.0.1:8337"),
            "start one with `hyperdial server`, or pass --server URL"
        );
        assert_eq!(
            start_hint("http://localhost:9001/"),
            "start one with `hyperdial server --bind 127.0.0.1:9001`, or pass --server URL"
        );
        assert!(start_hint("https://127.0.0.1:8443")
            .contains("--bind 127.0.0.1:8443 --tls-cert CERT.pem --tls-key KEY.pem"));
        assert!(start_hint("http://sweeps.lan:8337").contains("running on sweeps.lan"));
    }
}

/// Where the server is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// The store this client reads when it is served in this process (shown, password
    /// redacted): a missing run or sweep is then named in the store, not by the internal URL.
    store: Option<String>,
}

impl Api {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8337`).
    pub fn new(base: &str, token: Option<String>) -> Self {
        Api {
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
            store: None,
        }
    }

    /// A client for the server at `base` that also trusts the PEM certificates in `ca_cert`
    /// (`--ca-cert`, `HYPERDIAL_CA_CERT`); `None` is [`Api::new`].
    pub fn with_ca_cert(base: &str, token: Option<String>, ca_cert: Option<&Path>) -> Result<Self> {
        let Some(path) = ca_cert else {
            return Ok(Api::new(base, token));
        };
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA certificate file {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
            format!(
                "the CA certificate file {} is not valid PEM",
                path.display()
            )
        })?;
        if certs.is_empty() {
            anyhow::bail!(
                "the CA certificate file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            );
        }
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().with_context(|| {
            format!("the CA certificate file {} cannot be used", path.display())
        })?;
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http,
            store: None,
        })
    }

    /// A client for the store `shown` served in this process at `base`.
    pub fn for_store(base: &str, shown: &str) -> Self {
        Api {
            store: Some(shown.to_string()),
            ..Api::new(base, None)
        }
    }

    /// Whether this client reads a store served in this process (no server was named).
    pub fn is_local_store(&self) -> bool {
        self.store.is_some()
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, path: &str) -> Result<reqwest::Response> {
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(err) => return Err(self.transport_error(err)),
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        // Only a 404 for the run or sweep itself: `/sweeps/ID/best` also answers 404 when
        // the sweep exists and has no best run yet, and says so.
        if let (404, Some(store), Some((kind, id))) =
            (status.as_u16(), &self.store, missing_object(path))
        {
            if message.starts_with(&format!("no {kind} with id")) {
                anyhow::bail!("no {kind} {id} in {store}");
            }
        }
        Err(HttpError {
            path: path.to_string(),
            status: status.as_u16(),
            message,
        }
        .into())
    }

    /// GET a JSON document.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .send(self.request(reqwest::Method::GET, path), path)
            .await?;
        Ok(resp.json().await?)
    }

    /// GET a text document.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let resp = self
            .send(self.request(reqwest::Method::GET, path), path)
            .await?;
        Ok(resp.text().await?)
    }

    /// POST JSON (a wire type of `hyperdial_wire::api`, or `{}`), answer JSON (empty answers
    /// are `null`).
    pub async fn post<T: serde::Serialize + ?Sized>(&self, path: &str, body: &T) -> Result<Value> {
        let resp = self
            .send(self.request(reqwest::Method::POST, path).json(body), path)
            .await?;
        let text = resp.text().await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// PUT JSON.
    pub async fn put<T: serde::Serialize + ?Sized>(&self, path: &str, body: &T) -> Result<Value> {
        let resp = self
            .send(self.request(reqwest::Method::PUT, path).json(body), path)
            .await?;
        let text = resp.text().await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Why a request got no answer: a TLS problem says what to fix; anything else means no
    /// server answers there.
    fn transport_error(&self, err: reqwest::Error) -> anyhow::Error {
        match hyperdial_agent::client::tls_problem(&err) {
            Some(problem) => anyhow::anyhow!(
                "TLS with the hyperdial server at {} failed: {problem}",
                self.base
            ),
            None => anyhow::Error::new(err).context(format!(
                "cannot reach the hyperdial server at {} ({})",
                self.base,
                start_hint(&self.base)
            )),
        }
    }

    /// Whether a server answers at all. A server that answers but fails TLS (an untrusted
    /// certificate, plain HTTP to an HTTPS server or the reverse) is an error, not a missing
    /// server: commands that fall back to the local database must not do so then.
    pub async fn reachable(&self) -> Result<bool> {
        let req = self
            .request(reqwest::Method::GET, "/api/v1/openapi.json")
            .timeout(std::time::Duration::from_millis(800));
        match req.send().await {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 401 => Ok(true),
            Ok(r) if r.status().as_u16() == 400 => {
                // An HTTPS server answering plain HTTP says so.
                let text = r.text().await.unwrap_or_default();
                match serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                {
                    Some(message) => anyhow::bail!("{}: {message}", self.base),
                    None => Ok(false),
                }
            }
            Ok(_) => Ok(false),
            Err(err) if hyperdial_agent::client::tls_problem(&err).is_some() => {
                Err(self.transport_error(err))
            }
            Err(_) => Ok(false),
        }
    }
}
