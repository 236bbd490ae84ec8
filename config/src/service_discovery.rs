//! Service discovery settings as Prometheus writes them:
//! `kubernetes_sd_configs` (with Vigil's `own_node`) and `file_sd_configs`,
//! and what Prometheus refuses in them. The discoveries themselves (the
//! API watches, the file readers) are the agent's
//! (`collector/src/kubernetes_sd/`, `collector/src/file_sd.rs`).

use crate::http_client::TlsConfig;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Node,
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Pod => "pod",
            Role::Service => "service",
            Role::Endpoints => "endpoints",
            Role::EndpointSlice => "endpointslice",
        }
    }
}

/// Which namespaces to watch; all when empty.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceDiscovery {
    pub own_namespace: bool,
    pub names: Vec<String>,
}

/// A label or field selector for one role, as the API takes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    pub role: Role,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSdConfig {
    pub role: Option<Role>,
    /// The API server; in-cluster (or `kubeconfig_file`) when unset.
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<PathBuf>,
    pub namespaces: NamespaceDiscovery,
    pub selectors: Vec<Selector>,
    /// For `api_server`: a bearer token file and the CA to trust.
    pub bearer_token_file: Option<PathBuf>,
    pub tls_config: Option<TlsConfig>,
    /// Vigil's: only this agent's node, for the roles where that means
    /// something (node, pod, endpoints, endpointslice).
    pub own_node: bool,
    /// This agent's node when the caller knows it (the logs tailer's
    /// `node_name`); else `$NODE_NAME` or the host's name.
    #[serde(skip)]
    pub node_name: Option<String>,
}

impl Default for KubernetesSdConfig {
    fn default() -> Self {
        KubernetesSdConfig {
            role: None,
            api_server: None,
            kubeconfig_file: None,
            namespaces: NamespaceDiscovery::default(),
            selectors: Vec::new(),
            bearer_token_file: None,
            tls_config: None,
            own_node: true,
            node_name: None,
        }
    }
}

impl KubernetesSdConfig {
    /// What Prometheus refuses, and what this agent does not do yet.
    pub fn validate(&self) -> Result<(), String> {
        let role = self
            .role
            .ok_or("role missing (one of: node, pod, service, endpoints, endpointslice)")?;
        if self.api_server.is_some() && self.kubeconfig_file.is_some() {
            return Err("cannot use 'kubeconfig_file' and 'api_server' simultaneously".into());
        }
        if let Some(url) = &self.api_server {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "api_server {url:?} must start with http:// or https://"
                ));
            }
        }
        for s in &self.selectors {
            // The endpoints roles also watch pods and services.
            let joined = matches!(role, Role::Endpoints | Role::EndpointSlice)
                && matches!(s.role, Role::Pod | Role::Service);
            if s.role != role && !joined {
                return Err(format!(
                    "{} role supports only {} selectors",
                    role.as_str(),
                    role.as_str()
                ));
            }
        }
        if let Some(t) = &self.tls_config {
            t.validate().map_err(|e| format!("tls_config: {e}"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    #[serde(deserialize_with = "crate::units::de_duration")]
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}
