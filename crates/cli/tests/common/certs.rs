//! Certificates made by the tests: a private CA and a server certificate it signs, as PEM
//! files in a directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// PEM files of a private CA and of a server certificate it signed.
pub struct Certs {
    /// The CA's certificate: what clients pass to `--ca-cert`.
    pub ca: PathBuf,
    /// The server's certificate (`--tls-cert`).
    pub cert: PathBuf,
    /// The server's private key (`--tls-key`).
    pub key: PathBuf,
    /// A self-signed certificate of another CA, which did not sign the server's.
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Make the files in `dir`: a CA, and a server certificate for `names` (DNS names or IP
/// addresses) signed by it.
pub fn make(dir: &Path, names: &[&str]) -> Certs {
    let issuer = ca("hyperdial test CA");
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "hyperdial test server");
    let cert = params.signed_by(&key, &issuer).unwrap();
    let certs = Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        other_ca: dir.join("other-ca.pem"),
    };
    std::fs::write(&certs.ca, issuer.pem()).unwrap();
    std::fs::write(&certs.cert, cert.pem()).unwrap();
    std::fs::write(&certs.key, key.serialize_pem()).unwrap();
    std::fs::write(&certs.other_ca, ca("another CA").pem()).unwrap();
    certs
}
