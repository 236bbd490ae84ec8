//! Prometheus's `tls_config` as a rustls client configuration, for https
//! scrapes (etcd with client certificates, the kubelet with the cluster
//! CA) and https remote_write. Certificates and keys are PEM, inline or in
//! files; files are re-read when they change, so rotated certificates are
//! picked up without a restart (see [`TlsFiles`]).

use crate::scrape_config::TlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

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

/// What a `tls_config` says, checked at config load where no file has to
/// be read: the combinations Prometheus refuses.
pub fn validate(cfg: &TlsConfig) -> Result<(), String> {
    if cfg.ca.is_some() && cfg.ca_file.is_some() {
        return Err("at most one of ca and ca_file must be configured".into());
    }
    if cfg.cert.is_some() && cfg.cert_file.is_some() {
        return Err("at most one of cert and cert_file must be configured".into());
    }
    if cfg.key.is_some() && cfg.key_file.is_some() {
        return Err("at most one of key and key_file must be configured".into());
    }
    let has_cert = cfg.cert.is_some() || cfg.cert_file.is_some();
    let has_key = cfg.key.is_some() || cfg.key_file.is_some();
    if has_cert && !has_key {
        return Err(
            "exactly one of key or key_file must be configured when a client certificate is configured"
                .into(),
        );
    }
    if has_key && !has_cert {
        return Err(
            "exactly one of cert or cert_file must be configured when a client key is configured"
                .into(),
        );
    }
    let min = version(cfg.min_version.as_deref())?;
    let max = version(cfg.max_version.as_deref())?;
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(format!(
                "max_version {} must be at least min_version {}",
                cfg.max_version.as_deref().unwrap_or(""),
                cfg.min_version.as_deref().unwrap_or("")
            ));
        }
    }
    if let Some(name) = &cfg.server_name {
        ServerName::try_from(name.as_str())
            .map_err(|_| format!("server_name {name:?} is not a valid host name"))?;
    }
    Ok(())
}

/// TLS versions rustls speaks, in Prometheus's spelling; older ones are
/// refused here rather than silently raised.
fn version(v: Option<&str>) -> Result<Option<u8>, String> {
    match v {
        None | Some("") => Ok(None),
        Some("TLS12") => Ok(Some(12)),
        Some("TLS13") => Ok(Some(13)),
        Some(other @ ("TLS10" | "TLS11")) => Err(format!(
            "TLS version {other} is not supported (Vigil speaks TLS12 and TLS13)"
        )),
        Some(other) => Err(format!("unknown TLS version: {other}")),
    }
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
    validate(cfg).map_err(TlsError::Settings)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let min = version(cfg.min_version.as_deref())
        .map_err(TlsError::Settings)?
        .unwrap_or(12);
    let max = version(cfg.max_version.as_deref())
        .map_err(TlsError::Settings)?
        .unwrap_or(13);
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
    fn settings_prometheus_refuses_are_refused_by_name() {
        let e = validate(&cfg("cert_file: /c.pem\n")).unwrap_err();
        assert!(e.contains("key or key_file"), "{e}");
        let e = validate(&cfg("key_file: /k.pem\n")).unwrap_err();
        assert!(e.contains("cert or cert_file"), "{e}");
        let e = validate(&cfg("ca: x\nca_file: /ca.pem\n")).unwrap_err();
        assert!(e.contains("ca and ca_file"), "{e}");
        let e = validate(&cfg("min_version: TLS10\n")).unwrap_err();
        assert!(e.contains("TLS10 is not supported"), "{e}");
        let e = validate(&cfg("min_version: TLS13\nmax_version: TLS12\n")).unwrap_err();
        assert!(e.contains("at least min_version"), "{e}");
        let e = validate(&cfg("max_version: SSL3\n")).unwrap_err();
        assert!(e.contains("unknown TLS version: SSL3"), "{e}");
        validate(&cfg(
            "cert_file: /c.pem\nkey_file: /k.pem\nserver_name: etcd.local\n",
        ))
        .unwrap();
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
