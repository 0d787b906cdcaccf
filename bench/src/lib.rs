//! Shared helpers of the benchmark binaries: an embedded server on a scratch database.

use std::path::PathBuf;

/// A server on a fresh database in a temporary directory, on an ephemeral loopback port.
pub struct Scratch {
    /// Base URL.
    pub url: String,
    /// The scratch directory (removed on drop).
    pub dir: PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Start a scratch server.
pub async fn scratch_server() -> Scratch {
    let dir =
        std::env::temp_dir().join(format!("hyperdial-bench-{}", hyperdial_store::new_id("b")));
    let store = hyperdial_store::Store::open_sqlite(&dir.join("db.sqlite"))
        .await
        .expect("open store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            rx.await.ok();
        };
        hyperdial_server::serve(
            listener,
            store,
            hyperdial_server::Options::default(),
            shutdown,
        )
        .await
        .expect("serve");
    });
    Scratch {
        url,
        dir,
        _stop: tx,
    }
}
