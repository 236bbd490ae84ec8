//! Prometheus's `tls_config` as a rustls client configuration, for https
//! scrapes (etcd with client certificates, the kubelet with the cluster
//! CA) and https remote_write. Certificates and keys are PEM, inline or in
//! files; files are re-read when they change, so rotated certificates are
//! picked up without a restart (see [`TlsFiles`]).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use vigil_config::http_client::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("unable to read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unable to use the specified {what}: {message}")]
    Pem { what: &'static str, message: String },
    #[error("invalid TLS settings: {0}")]
    Settings(String),
}

/// The files a client configuration was built from and when each last
/// changed, to tell when to build it again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles(Vec<(PathBuf, Option<SystemTime>)>);

impl TlsFiles {
    pub fn of(cfg: &TlsConfig) -> Self {
        let paths = [&cfg.ca_file, &cfg.cert_file, &cfg.key_file];
        TlsFiles(
            paths
                .into_iter()
                .flatten()
                .map(|p| (p.clone(), modified(p)))
                .collect(),
        )
    }

    /// True when a file changed (or appeared, or vanished) since.
    pub fn changed(&self) -> bool {
        self.0.iter().any(|(p, t)| modified(p) != *t)
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn pem_bytes(
    what: &'static str,
    inline: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<Option<Vec<u8>>, TlsError> {
    match (inline, file) {
        (Some(text), _) => Ok(Some(text.as_bytes().to_vec())),
        (None, Some(path)) => std::fs::read(path)
            .map(Some)
            .map_err(|source| TlsError::Read {
                what,
                path: path.clone(),
                source,
            }),
        (None, None) => Ok(None),
    }
}

fn certificates(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            message: "no PEM certificate found".into(),
        });
    }
    Ok(certs)
}

/// Builds the client configuration for `cfg`, reading its files now.
pub fn client_config(cfg: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    cfg.validate().map_err(TlsError::Settings)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (min, max) = cfg.versions().map_err(TlsError::Settings)?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    let mut roots = rustls::RootCertStore::empty();
    match pem_bytes("CA cert", &cfg.ca, &cfg.ca_file)? {
        Some(pem) => {
            for c in certificates("CA cert", &pem)? {
                roots.add(c).map_err(|e| TlsError::Pem {
                    what: "CA cert",
                    message: e.to_string(),
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|e| TlsError::Settings(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if cfg.insecure_skip_verify {
        Arc::new(SkipVerify(Arc::clone(&provider)))
    } else if let Some(name) = &cfg.server_name {
        let name = ServerName::try_from(name.clone()).map_err(|_| {
            TlsError::Settings(format!("server_name {name:?} is not a valid host name"))
        })?;
        Arc::new(NamedVerifier {
            inner: webpki,
            name,
        })
    } else {
        webpki
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Settings(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let cert = pem_bytes("client cert", &cfg.cert, &cfg.cert_file)?;
    let key = pem_bytes("client key", &cfg.key, &cfg.key_file)?;
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = certificates("client cert", &cert)?;
            let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| TlsError::Pem {
                what: "client key",
                message: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Pem {
                    what: "client cert and key",
                    message: e.to_string(),
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Checks the server's certificate against `server_name` instead of the
/// host in the URL (a target scraped by IP whose certificate names a host).
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _url_host: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify: true`: any certificate is accepted, but the
/// handshake's signatures are still checked (so the connection is at least
/// encrypted to whoever holds the certificate's key).
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> TlsConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn unreadable_or_empty_pem_names_what_and_where() {
        let e = client_config(&cfg("ca_file: /nonexistent/ca.pem\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to read CA cert /nonexistent/ca.pem: No such file or directory (os error 2)"
        );
        let e = client_config(&cfg("ca: not a certificate\n")).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate found"), "{e}");
        // The public roots, no client certificate: builds.
        client_config(&TlsConfig::default()).unwrap();
        client_config(&cfg("insecure_skip_verify: true\nmin_version: TLS13\n")).unwrap();
    }

    #[test]
    fn changed_files_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let c = cfg(&format!("ca_file: {}\n", ca.display()));
        let before = TlsFiles::of(&c);
        assert!(!before.changed());
        std::fs::write(&ca, "x").unwrap();
        assert!(before.changed(), "a file that appeared");
        let now = TlsFiles::of(&c);
        assert!(!now.changed());
    }
}
