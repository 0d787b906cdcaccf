//! A small HTTP client for the inspection commands (`sweeps`, `runs`, `best`, ...).

use anyhow::{Context, Result};
use serde_json::Value;

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

/// Where the server is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
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
        }
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
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach the hyperdial server at {} (start one with `hyperdial server`, or pass --server URL)",
                self.base
            )
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
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

    /// Whether a server answers at all.
    pub async fn reachable(&self) -> bool {
        let req = self
            .request(reqwest::Method::GET, "/api/v1/openapi.json")
            .timeout(std::time::Duration::from_millis(800));
        matches!(req.send().await, Ok(r) if r.status().is_success() || r.status().as_u16() == 401)
    }
}
