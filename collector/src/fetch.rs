//! The HTTP side of a scrape: one GET with Prometheus's headers,
//! authentication from the job's config (files re-read on every request,
//! so rotated tokens are picked up), the scrape timeout and the body size
//! limit, TLS from the job's `tls_config` (`tls.rs`). Errors read like
//! Prometheus's `lastError`.

use crate::exposition::ACCEPT_HEADER;
use crate::scrape_config::ScrapeConfig;
use crate::tls::{TlsError, TlsFiles};
use base64::Engine as _;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use vigil_config::http_client::{Authorization, BasicAuth, TlsConfig};

/// How every request of one job authenticates.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    Basic {
        username: String,
        password: Secret,
    },
    /// `Authorization: <scheme> <credentials>` (bearer tokens included).
    Header {
        scheme: String,
        credentials: Secret,
    },
}

/// A secret given inline or in a file read when it is needed.
#[derive(Debug, Clone)]
pub enum Secret {
    Inline(String),
    File(PathBuf),
}

impl Secret {
    pub(crate) fn read(&self) -> Result<String, String> {
        match self {
            Secret::Inline(s) => Ok(s.clone()),
            Secret::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("unable to read {}: {e}", p.display())),
        }
    }
}

impl Credentials {
    pub fn from_config(
        basic: Option<&BasicAuth>,
        authz: Option<&Authorization>,
        bearer_token: Option<&String>,
        bearer_token_file: Option<&PathBuf>,
    ) -> Self {
        if let Some(b) = basic {
            let password = match (&b.password, &b.password_file) {
                (_, Some(f)) => Secret::File(f.clone()),
                (p, None) => Secret::Inline(p.clone().unwrap_or_default()),
            };
            return Credentials::Basic {
                username: b.username.clone(),
                password,
            };
        }
        if let Some(a) = authz {
            let credentials = match (&a.credentials, &a.credentials_file) {
                (_, Some(f)) => Secret::File(f.clone()),
                (c, None) => Secret::Inline(c.clone().unwrap_or_default()),
            };
            return Credentials::Header {
                scheme: a.kind.clone().unwrap_or_else(|| "Bearer".into()),
                credentials,
            };
        }
        match (bearer_token, bearer_token_file) {
            (Some(t), _) => Credentials::Header {
                scheme: "Bearer".into(),
                credentials: Secret::Inline(t.clone()),
            },
            (None, Some(f)) => Credentials::Header {
                scheme: "Bearer".into(),
                credentials: Secret::File(f.clone()),
            },
            (None, None) => Credentials::None,
        }
    }

    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Result<Option<String>, String> {
        Ok(match self {
            Credentials::None => None,
            Credentials::Basic { username, password } => {
                let raw = format!("{username}:{}", password.read()?);
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            Credentials::Header {
                scheme,
                credentials,
            } => Some(format!("{scheme} {}", credentials.read()?)),
        })
    }
}

/// One job's HTTP client: connections are kept alive between scrapes.
pub struct Fetcher {
    client: Mutex<Client>,
    tls: Option<TlsConfig>,
    credentials: Credentials,
    body_size_limit: u64,
}

/// The HTTP client as last built, or why it could not be: a certificate
/// file that is missing now may be mounted later, and one that changes is
/// a rotation to pick up, so a TLS job's client is rebuilt when its files
/// change.
struct Client {
    agent: Result<ureq::Agent, String>,
    files: TlsFiles,
}

/// An HTTP client with the agent's headers and `tls` (when given).
pub fn http_agent(tls: Option<&TlsConfig>) -> Result<ureq::Agent, TlsError> {
    let mut b = ureq::AgentBuilder::new()
        .user_agent(concat!("Vigil-agent/", env!("CARGO_PKG_VERSION")))
        .redirects(10);
    if let Some(t) = tls {
        b = b.tls_config(crate::tls::client_config(t)?);
    }
    Ok(b.build())
}

/// A successful fetch.
pub struct Fetched {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

impl Fetcher {
    pub fn new(cfg: &ScrapeConfig) -> Self {
        let tls = cfg.tls_config.clone();
        let client = Client {
            agent: http_agent(tls.as_ref()).map_err(|e| e.to_string()),
            files: tls.as_ref().map(TlsFiles::of).unwrap_or_default(),
        };
        Fetcher {
            client: Mutex::new(client),
            tls,
            credentials: Credentials::from_config(
                cfg.basic_auth.as_ref(),
                cfg.authorization.as_ref(),
                cfg.bearer_token.as_ref(),
                cfg.bearer_token_file.as_ref(),
            ),
            body_size_limit: cfg.body_size_limit.unwrap_or(0),
        }
    }

    /// The client to use now, rebuilt first if its TLS files changed.
    fn agent(&self) -> Result<ureq::Agent, String> {
        let mut c = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tls) = &self.tls {
            if c.agent.is_err() || c.files.changed() {
                let files = TlsFiles::of(tls);
                c.agent = http_agent(Some(tls)).map_err(|e| e.to_string());
                c.files = files;
            }
        }
        c.agent.clone()
    }

    /// GETs `url` within `timeout`.
    pub fn fetch(&self, url: &str, timeout: Duration) -> Result<Fetched, String> {
        let mut req = self
            .agent()?
            .get(url)
            .timeout(timeout)
            .set("Accept", ACCEPT_HEADER)
            .set(
                "X-Prometheus-Scrape-Timeout-Seconds",
                &format!("{}", timeout.as_secs_f64()),
            );
        if let Some(h) = self.credentials.header()? {
            req = req.set("Authorization", &h);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                return Err(format!(
                    "server returned HTTP status {code} {}",
                    r.status_text()
                ))
            }
            Err(ureq::Error::Transport(t)) => return Err(transport_error(&t)),
        };
        if resp.status() != 200 {
            return Err(format!(
                "server returned HTTP status {} {}",
                resp.status(),
                resp.status_text()
            ));
        }
        let content_type = resp.header("Content-Type").map(str::to_string);
        let mut body = Vec::new();
        let reader = resp.into_reader();
        let read = if self.body_size_limit > 0 {
            reader.take(self.body_size_limit + 1).read_to_end(&mut body)
        } else {
            let mut r = reader;
            r.read_to_end(&mut body)
        };
        read.map_err(|e| format!("reading the response body: {e}"))?;
        if self.body_size_limit > 0 && body.len() as u64 > self.body_size_limit {
            return Err(format!(
                "body size limit exceeded (limit {} bytes)",
                self.body_size_limit
            ));
        }
        Ok(Fetched { body, content_type })
    }
}

fn transport_error(t: &ureq::Transport) -> String {
    let text = t.to_string();
    if text.contains("timed out") || text.contains("Timeout") {
        format!("context deadline exceeded ({text})")
    } else {
        text
    }
}
