//! Prometheus's HTTP client settings as scrape jobs, remote_write,
//! Kubernetes discovery and Alertmanager clients write them: `tls_config`,
//! `basic_auth` and `authorization`, and the combinations Prometheus
//! refuses, checked at config load where no file has to be read. Building
//! a client from them (reading certificates, keys and secrets) is the
//! agent's job (`collector/src/tls.rs`, `collector/src/fetch.rs`).

use rustls_pki_types::ServerName;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM, inline; or `ca_file`.
    pub ca: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// The client certificate (chain), PEM inline; or `cert_file`.
    pub cert: Option<String>,
    pub cert_file: Option<PathBuf>,
    /// The client key, PEM inline; or `key_file`.
    pub key: Option<String>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    /// `TLS12` or `TLS13`.
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

impl TlsConfig {
    /// The combinations Prometheus refuses, by name.
    pub fn validate(&self) -> Result<(), String> {
        if self.ca.is_some() && self.ca_file.is_some() {
            return Err("at most one of ca and ca_file must be configured".into());
        }
        if self.cert.is_some() && self.cert_file.is_some() {
            return Err("at most one of cert and cert_file must be configured".into());
        }
        if self.key.is_some() && self.key_file.is_some() {
            return Err("at most one of key and key_file must be configured".into());
        }
        let has_cert = self.cert.is_some() || self.cert_file.is_some();
        let has_key = self.key.is_some() || self.key_file.is_some();
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
        self.versions()?;
        if let Some(name) = &self.server_name {
            ServerName::try_from(name.as_str())
                .map_err(|_| format!("server_name {name:?} is not a valid host name"))?;
        }
        Ok(())
    }

    /// The TLS versions to speak, lowest and highest, as minor numbers of
    /// 1.x (12, 13): TLS 1.2 to 1.3 unless narrowed.
    pub fn versions(&self) -> Result<(u8, u8), String> {
        let min = version(self.min_version.as_deref())?.unwrap_or(12);
        let max = version(self.max_version.as_deref())?.unwrap_or(13);
        if min > max {
            return Err(format!(
                "max_version {} must be at least min_version {}",
                self.max_version.as_deref().unwrap_or(""),
                self.min_version.as_deref().unwrap_or("")
            ));
        }
        Ok((min, max))
    }
}

/// TLS versions Vigil speaks, in Prometheus's spelling; older ones are
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

/// Prometheus's HTTP client config checks: one way to authenticate.
pub fn validate_auth(
    basic: Option<&BasicAuth>,
    authz: Option<&Authorization>,
    bearer: bool,
) -> Result<(), String> {
    if [basic.is_some(), authz.is_some(), bearer]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return Err(
            "at most one of basic_auth, authorization & bearer_token(_file) must be configured"
                .into(),
        );
    }
    if let Some(b) = basic {
        if b.password.is_some() && b.password_file.is_some() {
            return Err(
                "at most one of basic_auth password & password_file must be configured".into(),
            );
        }
    }
    if let Some(a) = authz {
        if a.credentials.is_some() && a.credentials_file.is_some() {
            return Err(
                "at most one of authorization credentials & credentials_file must be configured"
                    .into(),
            );
        }
        if a.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("basic"))
        {
            return Err(
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead".into(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> TlsConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn tls_settings_prometheus_refuses_are_refused_by_name() {
        let e = cfg("cert_file: /c.pem\n").validate().unwrap_err();
        assert!(e.contains("key or key_file"), "{e}");
        let e = cfg("key_file: /k.pem\n").validate().unwrap_err();
        assert!(e.contains("cert or cert_file"), "{e}");
        let e = cfg("ca: x\nca_file: /ca.pem\n").validate().unwrap_err();
        assert!(e.contains("ca and ca_file"), "{e}");
        let e = cfg("min_version: TLS10\n").validate().unwrap_err();
        assert!(e.contains("TLS10 is not supported"), "{e}");
        let e = cfg("min_version: TLS13\nmax_version: TLS12\n")
            .validate()
            .unwrap_err();
        assert!(e.contains("at least min_version"), "{e}");
        let e = cfg("max_version: SSL3\n").validate().unwrap_err();
        assert!(e.contains("unknown TLS version: SSL3"), "{e}");
        let e = cfg("server_name: 'not a host'\n").validate().unwrap_err();
        assert!(e.contains("not a valid host name"), "{e}");
        cfg("cert_file: /c.pem\nkey_file: /k.pem\nserver_name: etcd.local\n")
            .validate()
            .unwrap();
        assert_eq!(TlsConfig::default().versions(), Ok((12, 13)));
        assert_eq!(cfg("min_version: TLS13\n").versions(), Ok((13, 13)));
    }

    #[test]
    fn one_way_to_authenticate() {
        let basic = BasicAuth {
            username: "u".into(),
            ..BasicAuth::default()
        };
        let authz = Authorization::default();
        assert!(validate_auth(Some(&basic), None, false).is_ok());
        let e = validate_auth(Some(&basic), Some(&authz), false).unwrap_err();
        assert!(e.contains("at most one of basic_auth"), "{e}");
        let e = validate_auth(None, Some(&authz), true).unwrap_err();
        assert!(e.contains("bearer_token"), "{e}");
        let both = BasicAuth {
            password: Some("p".into()),
            password_file: Some("/p".into()),
            ..basic
        };
        let e = validate_auth(Some(&both), None, false).unwrap_err();
        assert!(e.contains("password & password_file"), "{e}");
        let basic_kind = Authorization {
            kind: Some("Basic".into()),
            ..Authorization::default()
        };
        let e = validate_auth(None, Some(&basic_kind), false).unwrap_err();
        assert!(e.contains("use \"basic_auth\""), "{e}");
    }
}
