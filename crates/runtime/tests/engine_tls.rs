//! The Docker engine over `tcp://` with TLS client certificates, against a stand-in engine:
//! a TLS server (certificates made here by a test CA) that demands a client certificate from
//! that CA and answers `GET /_ping` as dockerd does. Starting a real `dockerd --tlsverify` is not
//! possible in the test environment; the TLS handshake and the certificate checks are real.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use desktop_runtime::{ContainerRuntime, DockerRuntime, DockerSettings, DockerTls, RuntimeError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A CA, and certificates it signed, written as PEM files.
struct Pki {
    ca: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (server: `127.0.0.1`; client: any) and its key.
    fn issue(&self, names: &[&str]) -> (rcgen::Certificate, KeyPair) {
        let params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        (params.signed_by(&key, &self.issuer).unwrap(), key)
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// Serves `/_ping` over TLS on 127.0.0.1, only to clients with a certificate from `client_ca`.
async fn fake_engine(server: &Pki, client_ca: &Pki) -> u16 {
    let (cert, key) = server.issue(&["127.0.0.1"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(client_ca.ca.der().to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client without an accepted certificate fails here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = if head.starts_with(b"GET /_ping") {
                    "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                };
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

async fn runtime(port: u16, tls: Option<DockerTls>) -> Result<DockerRuntime, RuntimeError> {
    DockerRuntime::connect(DockerSettings {
        host: Some(format!("tcp://127.0.0.1:{port}")),
        tls,
        ..DockerSettings::default()
    })
    .await
}

#[tokio::test]
async fn a_tcp_engine_is_reached_over_tls_with_a_client_certificate_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let (engine_ca, client_ca, stranger_ca) = (Pki::new("engine CA"), Pki::new("client CA"), Pki::new("stranger"));
    let port = fake_engine(&engine_ca, &client_ca).await;
    let ca = write(dir.path(), "ca.pem", &engine_ca.ca.pem());
    let (cert, key) = client_ca.issue(&["portal"]);
    let tls = DockerTls {
        ca: ca.clone(),
        cert: write(dir.path(), "cert.pem", &cert.pem()),
        key: write(dir.path(), "key.pem", &key.serialize_pem()),
    };
    runtime(port, Some(tls.clone()))
        .await
        .expect("TLS settings are valid")
        .ping()
        .await
        .expect("the engine answers a client with its certificate");

    // A certificate from a CA the engine does not trust: the handshake fails.
    let (cert, key) = stranger_ca.issue(&["portal"]);
    let stranger = DockerTls {
        cert: write(dir.path(), "stranger-cert.pem", &cert.pem()),
        key: write(dir.path(), "stranger-key.pem", &key.serialize_pem()),
        ..tls.clone()
    };
    let err = runtime(port, Some(stranger)).await.unwrap().ping().await.unwrap_err();
    assert!(matches!(err, RuntimeError::Unavailable(_)), "{err:?}");

    // An engine whose certificate is not from the configured CA is not trusted.
    let wrong_ca = DockerTls {
        ca: write(dir.path(), "other-ca.pem", &stranger_ca.ca.pem()),
        ..tls.clone()
    };
    let err = runtime(port, Some(wrong_ca)).await.unwrap().ping().await.unwrap_err();
    assert!(matches!(err, RuntimeError::Unavailable(_)), "{err:?}");

    // Plain tcp:// is refused before any connection, unless explicitly allowed (a lab).
    let err = runtime(port, None).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Invalid(m) if m.contains("plain TCP")),
        "{err:?}"
    );
}
