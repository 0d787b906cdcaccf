//! A real server on an ephemeral loopback port with its own database, and a small HTTP client
//! for it. Shared by the API and dashboard end-to-end tests.

#![allow(dead_code)] // each test crate uses its own subset

use hyperdial_server::{serve, Options};
use hyperdial_store::Store;
use serde_json::{json, Value};

/// A running server; dropping it stops the server and removes its database.
pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// Start a server, requiring `token` when given.
pub async fn start(token: Option<&str>) -> Server {
    start_with(Options {
        tokens: hyperdial_server::Tokens::new(token.map(str::to_string)),
        ..Options::default()
    })
    .await
}

/// Start a server with `options` (plain HTTP: `options.tls` must be `None`).
pub async fn start_with(options: Options) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, store, options, async {
            rx.await.ok();
        })
        .await
        .unwrap();
    });
    Server {
        base,
        http: reqwest::Client::new(),
        _stop: tx,
        _dir: dir,
    }
}

impl Server {
    /// `method path` with a JSON body: the status and the JSON answer (`null` if not JSON).
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// `GET path`: the status and the JSON answer (the text when it is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Create a sweep from `source`; its id.
    pub async fn sweep(&self, source: &str) -> String {
        let (status, body) = self
            .post("/api/v1/sweeps", json!({ "source": source }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }
}
