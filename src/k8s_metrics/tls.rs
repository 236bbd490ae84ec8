//! The serving certificate of the metrics API port: from files, re-read
//! when they change (cert-manager and kubelet-style rotations need no
//! restart), or, when none are given, a self-signed one made at start as
//! metrics-server makes it — the APIService must then skip verification
//! (`insecureSkipTLSVerify`), the lesser option (docs/deploy.md).

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often the files' modification times are looked at, at most.
const CHECK_EVERY: Duration = Duration::from_secs(5);

fn load(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let cert_pem =
        std::fs::read(cert_file).map_err(|e| format!("reading {}: {e}", cert_file.display()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert_file.display()));
    }
    let key_pem =
        std::fs::read(key_file).map_err(|e| format!("reading {}: {e}", key_file.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{}: no private key in it ({e})", key_file.display()))?;
    let signing = any_supported_type(&key)
        .map_err(|e| format!("{}: unsupported private key: {e}", key_file.display()))?;
    let pair = CertifiedKey::new(certs, signing);
    // Mid-rotation the files can disagree: never serve such a pair.
    pair.keys_match().map_err(|e| {
        format!(
            "{} and {} do not belong together: {e}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    Ok(pair)
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

struct Current {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// Certificate files, re-read when either changes; a broken new pair
/// keeps the previous one in service (and says why).
pub struct FileCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: Mutex<Current>,
}

impl std::fmt::Debug for FileCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileCert({})", self.cert_file.display())
    }
}

impl FileCert {
    pub fn open(cert_file: &Path, key_file: &Path) -> Result<FileCert, String> {
        let key = Arc::new(load(cert_file, key_file)?);
        Ok(FileCert {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: Mutex::new(Current {
                key,
                stamps: (modified(cert_file), modified(key_file)),
                checked: Instant::now(),
            }),
        })
    }
}

impl FileCert {
    /// The pair in service, re-read first if the files changed.
    fn key(&self) -> Arc<CertifiedKey> {
        let mut c = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if c.checked.elapsed() >= CHECK_EVERY {
            c.checked = Instant::now();
            let stamps = (modified(&self.cert_file), modified(&self.key_file));
            if stamps != c.stamps {
                match load(&self.cert_file, &self.key_file) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert_file.display(), "k8s_metrics_api: serving certificate reloaded");
                        c.key = Arc::new(k);
                        c.stamps = stamps;
                    }
                    Err(e) => {
                        tracing::warn!("k8s_metrics_api: keeping the previous certificate: {e}")
                    }
                }
            }
        }
        Arc::clone(&c.key)
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key())
    }
}

/// A self-signed certificate for `names` (DNS names or IP addresses).
#[derive(Debug)]
pub struct SelfSigned(Arc<CertifiedKey>);

impl SelfSigned {
    pub fn generate(names: Vec<String>) -> Result<SelfSigned, String> {
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("generating a self-signed certificate: {e}"))?;
        let key = PrivateKeyDer::try_from(made.key_pair.serialize_der())
            .map_err(|e| format!("self-signed key: {e}"))?;
        let signing = any_supported_type(&key).map_err(|e| format!("self-signed key: {e}"))?;
        Ok(SelfSigned(Arc::new(CertifiedKey::new(
            vec![made.cert.der().clone()],
            signing,
        ))))
    }
}

impl ResolvesServerCert for SelfSigned {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// The TLS configuration of the port: HTTP/1.1, TLS 1.2 and 1.3.
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_files_are_reloaded_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let write = |names: Vec<String>| {
            let made = rcgen::generate_simple_self_signed(names).unwrap();
            std::fs::write(dir.path().join("tls.crt"), made.cert.pem()).unwrap();
            std::fs::write(dir.path().join("tls.key"), made.key_pair.serialize_pem()).unwrap();
            made.cert.der().to_vec()
        };
        let first = write(vec!["a.example".into()]);
        let fc = FileCert::open(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap();
        let served = |fc: &FileCert| {
            // As if the last look at the files were long ago.
            fc.current.lock().unwrap().checked = Instant::now() - CHECK_EVERY;
            fc.key().cert[0].to_vec()
        };
        assert_eq!(served(&fc), first);
        std::thread::sleep(Duration::from_millis(50));
        let second = write(vec!["b.example".into()]);
        assert_eq!(served(&fc), second);
        // A broken pair keeps the one in service; so does a key of
        // another certificate (a rotation half done).
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
        assert_eq!(served(&fc), second);
        let other = rcgen::generate_simple_self_signed(vec!["c.example".to_string()]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(dir.path().join("tls.key"), other.key_pair.serialize_pem()).unwrap();
        assert_eq!(served(&fc), second);
        assert!(load(&fc.cert_file, &fc.key_file)
            .unwrap_err()
            .contains("do not belong together"));
        assert!(
            FileCert::open(&dir.path().join("missing.crt"), &dir.path().join("tls.key"))
                .unwrap_err()
                .contains("missing.crt")
        );
    }
}
