//! The HTTPS listener in process: a client trusting the CA is served while another connection
//! sits silent before its handshake (handshakes do not hold up the accept loop); plain HTTP on
//! the TLS port gets a `400` saying to use `https://`; a client that does not trust the
//! certificate gets no answer; shutdown is not held up by a pending handshake.

use std::time::Duration;

use hyperdial_server::{serve, Options, TlsConfig};
use hyperdial_store::Store;
use hyperdial_wire::error_chain;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA's PEM, and PEM files of a server certificate for 127.0.0.1 it signed, in `dir`.
fn certificates(dir: &std::path::Path) -> (String, TlsConfig) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    let tls = TlsConfig::from_pem_files(&dir.join("server.pem"), &dir.join("server.key")).unwrap();
    (ca.pem(), tls)
}

#[tokio::test]
async fn https_is_served_beside_a_silent_connection_and_plain_http_is_told_to_use_https() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let (ca, tls) = certificates(dir);
    let store = Store::open_sqlite(&dir.join("db.sqlite")).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = Options {
        tls: Some(tls),
        ..Options::default()
    };
    let server = tokio::spawn(serve(listener, store, options, async {
        stopped.await.ok();
    }));

    // A connection that never starts its handshake.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = trusting
        .get(format!("https://{addr}/api/v1/sweeps"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), r#"{"sweeps":[]}"#);

    // Plain HTTP on the TLS port.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /api/v1/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut said = String::new();
    plain.read_to_string(&mut said).await.unwrap();
    assert!(said.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{said}");
    assert!(said.contains("speaks HTTPS only"), "{said}");

    // A client that does not know the CA: the handshake fails, nothing is served.
    let err = reqwest::Client::new()
        .get(format!("https://{addr}/api/v1/sweeps"))
        .send()
        .await
        .unwrap_err();
    let text = error_chain(&err);
    assert!(text.contains("UnknownIssuer"), "{text}");

    // Shutdown is not held up by the silent connection's pending handshake.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stopped")
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(dir).ok();
}
