//! HTTPS: the server's certificate and key, and a listener that speaks TLS.
//!
//! Off loopback the server requires a token; TLS keeps that token (and everything else) from
//! crossing the network in clear. [`TlsConfig::from_pem_files`] reads a certificate chain and
//! a private key in PEM (`hyperdial server --tls-cert FILE --tls-key FILE`) with rustls on the
//! `ring` provider; TLS 1.2 and 1.3, HTTP/1.1 (ALPN `http/1.1`). Every mistake in the files is
//! an error that names the file and what is wrong with it ([`TlsError`]).
//!
//! [`TlsListener`] accepts TCP connections and runs each handshake in its own task (bounded
//! by [`HANDSHAKE_TIMEOUT`]), so a slow or silent client never holds up the others; finished
//! handshakes are handed to axum through its [`Listener`] trait, so graceful shutdown works as
//! for plain HTTP. A client that speaks plain HTTP to the TLS port gets a plain-text
//! `400 Bad Request` saying to use `https://` (the first byte of a TLS connection is `0x16`,
//! a handshake record, and never starts an HTTP request), instead of a connection closed
//! without a word. Failed handshakes are logged at debug level only: port scanners and
//! clients that do not trust the certificate would otherwise fill the log.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest time a client may take to complete the TLS handshake after connecting.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes done but not yet taken by the HTTP server.
const READY_QUEUE: usize = 64;

/// Errors reading the certificate or the key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read the TLS {what} {path}: {source}")]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is read but does not hold what it must.
    #[error("the TLS {what} {path} {problem}")]
    Content {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, as the rest of a sentence (e.g. "holds no PEM certificate").
        problem: String,
    },
    /// Both files are readable but rustls refuses them together (most often: the key does
    /// not belong to the certificate).
    #[error("the TLS certificate {cert} and key {key} cannot be used together: {message}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        message: String,
    },
}

/// A server certificate chain and key, ready for [`TlsListener`]. Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ServerConfig>,
    cert: PathBuf,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Read a PEM certificate chain (`cert`: the server's certificate first, then any
    /// intermediates) and a PEM private key (`key`: PKCS#8, PKCS#1 RSA or SEC1 EC).
    ///
    /// # Errors
    /// [`TlsError::Read`] when a file cannot be read, [`TlsError::Content`] when it holds no
    /// certificate (or no key), is not PEM, or is damaged, and [`TlsError::Mismatch`] when
    /// the key does not belong to the certificate or rustls rejects the pair.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let cert_pem = read(cert, "certificate")?;
        let key_pem = read(key, "key")?;
        let chain = certificates(cert, &cert_pem)?;
        let private = private_key(key, &key_pem)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mismatch = |e: rustls::Error| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            message: e.to_string(),
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(mismatch)?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| match e {
                // rustls checks that the key matches the certificate's public key.
                rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                    message: "the key does not belong to the certificate".into(),
                },
                other => mismatch(other),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            config: Arc::new(config),
            cert: cert.to_path_buf(),
        })
    }

    /// The certificate file this configuration was read from.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file, in order.
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let problem = |problem: String| TlsError::Content {
        what: "certificate",
        path: path.to_path_buf(),
        problem,
    };
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(format!("is not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(problem(if looks_like_key(pem) {
            "holds a private key, not a certificate (pass the key with --tls-key)".into()
        } else {
            "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into()
        }));
    }
    for (i, der) in chain.iter().enumerate() {
        if let Err(e) = check_der(der) {
            return Err(problem(format!(
                "has a damaged certificate (number {} in the file): {e}",
                i + 1
            )));
        }
    }
    Ok(chain)
}

/// A light check that a certificate is a DER `SEQUENCE` of the length it says, so that a
/// damaged file is reported here, naming it, rather than at the first client's handshake.
fn check_der(der: &[u8]) -> Result<(), &'static str> {
    let (&tag, rest) = der.split_first().ok_or("it is empty")?;
    if tag != 0x30 {
        return Err("it is not a DER structure");
    }
    let (&first, rest) = rest.split_first().ok_or("it is cut short")?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("its length is malformed");
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    if len != rest.len() {
        return Err("its length does not match its content (cut short or padded)");
    }
    Ok(())
}

/// The private key of a PEM file.
fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(e) => {
            let problem = match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    if CertificateDer::from_pem_slice(pem).is_ok() {
                        "holds a certificate, not a private key (pass the certificate with --tls-cert)"
                            .to_string()
                    } else if String::from_utf8_lossy(pem).contains("ENCRYPTED PRIVATE KEY") {
                        "holds an encrypted private key; decrypt it first \
                         (`openssl pkey -in KEY -out PLAIN`)"
                            .to_string()
                    } else {
                        "holds no PEM private key (expected -----BEGIN PRIVATE KEY-----, \
                         -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)"
                            .to_string()
                    }
                }
                other => format!("is not valid PEM: {other}"),
            };
            Err(TlsError::Content {
                what: "key",
                path: path.to_path_buf(),
                problem,
            })
        }
    }
}

fn looks_like_key(pem: &[u8]) -> bool {
    PrivateKeyDer::from_pem_slice(pem).is_ok()
}

/// A TCP listener whose connections are TLS sessions (see the module documentation).
///
/// Dropping it stops accepting connections.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    /// Serve TLS with `config` on the connections of `listener`.
    pub fn new(listener: TcpListener, config: &TlsConfig) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = TlsAcceptor::from(config.config.clone());
        let acceptor = tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(TlsListener {
            ready,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accept TCP connections and hand each to its own handshake task.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(connection) => connection,
            Err(e) => {
                // Out of file descriptors and the like: wait a little, as axum does.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if ready.is_closed() {
            return;
        }
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(tcp, &acceptor)).await {
                Ok(Ok(Some(tls))) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Ok(None)) => tracing::debug!("{peer}: plain HTTP on the TLS port, refused"),
                Ok(Err(e)) => tracing::debug!("{peer}: TLS handshake failed: {e}"),
                Err(_) => tracing::debug!("{peer}: no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
            }
        });
    }
}

/// The body of the answer to a plain HTTP request on the TLS port.
const PLAIN_HTTP_BODY: &str = "{\"error\":\"this hyperdial server speaks HTTPS only: use https:// in the server URL, not http://\"}";

/// The whole answer to a plain HTTP request on the TLS port: `400`, JSON, connection closed.
fn plain_http_answer() -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{PLAIN_HTTP_BODY}",
        PLAIN_HTTP_BODY.len()
    )
}

/// Complete the TLS handshake of `tcp`; `None` when the client spoke plain HTTP (it has been
/// answered with a `400`).
async fn handshake(
    mut tcp: TcpStream,
    acceptor: &TlsAcceptor,
) -> io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before the handshake",
        ));
    }
    // 0x16: a TLS handshake record. Plain HTTP starts with a method name in ASCII.
    if first[0] != 0x16 {
        if first[0].is_ascii_uppercase() {
            tcp.write_all(plain_http_answer().as_bytes()).await?;
            let _ = tcp.shutdown().await;
        }
        return Ok(None);
    }
    let _ = tcp.set_nodelay(true);
    acceptor.accept(tcp).await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_answer_has_the_length_it_says() {
        let answer = plain_http_answer();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }

    #[test]
    fn damaged_der_is_recognised() {
        assert!(check_der(&[0x30, 0x03, 1, 2, 3]).is_ok());
        assert!(check_der(&[0x30, 0x04, 1, 2, 3]).is_err());
        assert!(check_der(&[0x30, 0x81, 0x02, 1, 2]).is_ok());
        assert!(check_der(&[0x31, 0x01, 0]).is_err());
        assert!(check_der(&[]).is_err());
    }

    fn temp(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn bad_files_are_named_with_what_is_wrong() {
        let missing = Path::new("/nonexistent/hyperdial/cert.pem");
        let err = TlsConfig::from_pem_files(missing, missing).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/hyperdial/cert.pem"), "{text}");
        assert!(text.contains("cannot read the TLS certificate"), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let junk = temp(&dir, "junk.pem", b"hello, not a certificate\n");
        let err = TlsConfig::from_pem_files(&junk, &junk)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("junk.pem") && err.contains("holds no PEM certificate"),
            "{err}"
        );

        let cut = temp(
            &dir,
            "cut.pem",
            b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
        );
        let err = TlsConfig::from_pem_files(&cut, &junk)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cut.pem") && err.contains("damaged certificate"),
            "{err}"
        );
    }
}
