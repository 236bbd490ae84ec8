//! prometheus.yml's `alerting.alertmanagers` entries as the notifier's
//! [`alerting::AlertmanagerSet`]s: targets from `static_configs`,
//! `file_sd_configs` and `kubernetes_sd_configs` (cluster-wide: the server
//! is not a node agent, so `own_node` does not apply), `relabel_configs` over them (`__address__`,
//! `__scheme__`, `__alerts_path__`), credentials (`basic_auth`,
//! `authorization`, `bearer_token(_file)`, files re-read per request),
//! `tls_config`, and the entry's own `alert_relabel_configs`.
//!
//! The configuration is checked here at startup, so a bad entry is an error
//! naming `alerting.alertmanagers[i]` and the field, never a silent drop.

use crate::config::{AlertingConfig, AlertmanagerConfig};
use collector::fetch::Credentials;
use collector::file_sd::FileSd;
use collector::kubernetes_sd::KubernetesSd;
use collector::labels::Labels;
use collector::relabel::{relabel, RelabelRule};
use collector::target::{TargetGroup, ADDRESS, SCHEME};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where a discovered Alertmanager takes alerts, before relabeling.
const ALERTS_PATH: &str = "__alerts_path__";

/// One configured entry, ready to send.
struct ConfiguredSet {
    scheme: String,
    alerts_path: String,
    static_groups: Vec<TargetGroup>,
    file_sd_configs: Vec<vigil_config::service_discovery::FileSdConfig>,
    file_sd: Mutex<FileSdState>,
    kubernetes: Vec<KubernetesSd>,
    relabel: Vec<RelabelRule>,
    alert_relabel: Vec<RelabelRule>,
    credentials: Credentials,
    agent: ureq::Agent,
}

struct FileSdState {
    sd: FileSd,
    /// When every file was last re-read regardless of its mtime.
    full_refresh: Option<Instant>,
}

/// The notifier's sets and the global `alert_relabel_configs`.
pub struct Alertmanagers {
    pub sets: Vec<Box<dyn alerting::AlertmanagerSet>>,
    pub alert_relabel: Option<alerting::AlertRelabel>,
}

/// Builds every entry, or says which one is wrong and why.
pub fn build(cfg: &AlertingConfig) -> anyhow::Result<Alertmanagers> {
    let mut sets: Vec<Box<dyn alerting::AlertmanagerSet>> = Vec::new();
    for (i, am) in cfg.alertmanagers.iter().enumerate() {
        let set =
            build_set(i, am).map_err(|e| anyhow::anyhow!("alerting.alertmanagers[{i}]: {e}"))?;
        sets.push(Box::new(set));
    }
    let rules = relabel_rules(&cfg.alert_relabel_configs, "alerting.alert_relabel_configs")
        .map_err(anyhow::Error::msg)?;
    let alert_relabel = (!rules.is_empty()).then(|| {
        let rules = Arc::new(rules);
        let f: alerting::AlertRelabel = Arc::new(move |labels| relabel_alert(&rules, labels));
        f
    });
    Ok(Alertmanagers {
        sets,
        alert_relabel,
    })
}

fn build_set(index: usize, am: &AlertmanagerConfig) -> Result<ConfiguredSet, String> {
    if am.api_version != "v2" {
        return Err(format!(
            "api_version {:?}: only v2 is supported (Alertmanager 0.16 and later)",
            am.api_version
        ));
    }
    if am.scheme != "http" && am.scheme != "https" {
        return Err(format!("scheme {:?}: want http or https", am.scheme));
    }
    if am.proxy_url.is_some() {
        return Err("proxy_url is not supported".into());
    }
    vigil_config::http_client::validate_auth(
        am.basic_auth.as_ref(),
        am.authorization.as_ref(),
        am.bearer_token.is_some() || am.bearer_token_file.is_some(),
    )?;
    if am.bearer_token.is_some() && am.bearer_token_file.is_some() {
        return Err("at most one of bearer_token & bearer_token_file must be configured".into());
    }
    let mut static_groups = Vec::new();
    for (j, sc) in am.static_configs.iter().enumerate() {
        for t in &sc.targets {
            if t.is_empty() || t.contains('/') {
                return Err(format!(
                    "static_configs[{j}]: target {t:?} is not HOST:PORT"
                ));
            }
        }
        static_groups.push(collector::target::static_group(j, &sc.targets, &sc.labels));
    }
    for (j, f) in am.file_sd_configs.iter().enumerate() {
        if f.files.is_empty() {
            return Err(format!("file_sd_configs[{j}]: files is empty"));
        }
    }
    let mut kubernetes = Vec::new();
    for (j, k) in am.kubernetes_sd_configs.iter().enumerate() {
        let mut k = k.clone();
        k.own_node = false;
        k.validate()
            .map_err(|e| format!("kubernetes_sd_configs[{j}]: {e}"))?;
        let sd = KubernetesSd::start(&format!("alertmanagers-{index}-{j}"), &k)
            .map_err(|e| format!("kubernetes_sd_configs[{j}]: cannot start: {e}"))?;
        kubernetes.push(sd);
    }
    let relabel = relabel_rules(&am.relabel_configs, "relabel_configs")?;
    let alert_relabel = relabel_rules(&am.alert_relabel_configs, "alert_relabel_configs")?;
    let mut agent = ureq::AgentBuilder::new()
        .timeout(am.timeout.max(Duration::from_millis(100)))
        .redirects(if am.follow_redirects { 10 } else { 0 });
    if let Some(t) = &am.tls_config {
        t.validate().map_err(|e| format!("tls_config: {e}"))?;
        let c = collector::tls::client_config(t).map_err(|e| format!("tls_config: {e}"))?;
        agent = agent.tls_config(c);
    }
    let prefix = am.path_prefix.trim_end_matches('/');
    Ok(ConfiguredSet {
        scheme: am.scheme.clone(),
        alerts_path: format!("{prefix}/api/v2/alerts"),
        static_groups,
        file_sd_configs: am.file_sd_configs.clone(),
        file_sd: Mutex::new(FileSdState {
            sd: FileSd::default(),
            full_refresh: None,
        }),
        kubernetes,
        relabel,
        alert_relabel,
        credentials: Credentials::from_config(
            am.basic_auth.as_ref(),
            am.authorization.as_ref(),
            am.bearer_token.as_ref(),
            am.bearer_token_file.as_ref(),
        ),
        agent: agent.build(),
    })
}

/// A list of relabel rules, or which one (0-based, as the other
/// indexes in these errors) is wrong.
fn relabel_rules(
    cfgs: &[vigil_config::relabel::RelabelConfig],
    field: &str,
) -> Result<Vec<RelabelRule>, String> {
    RelabelRule::all(cfgs).map_err(|(i, e)| format!("{field}[{}]: {e}", i.saturating_sub(1)))
}

/// Relabels an alert's labels; false when a rule dropped it.
fn relabel_alert(rules: &[RelabelRule], labels: &mut BTreeMap<String, String>) -> bool {
    let mut l = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !relabel(rules, &mut l) {
        return false;
    }
    *labels = l
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    true
}

impl ConfiguredSet {
    /// Static groups, what the Kubernetes watches know, then what the
    /// files say now (changed files are re-read on every call, all of them
    /// once per refresh_interval).
    fn groups(&self) -> Vec<TargetGroup> {
        let mut groups = self.static_groups.clone();
        for k in &self.kubernetes {
            groups.extend(k.groups());
        }
        if self.file_sd_configs.is_empty() {
            return groups;
        }
        let mut st = self.file_sd.lock().unwrap_or_else(PoisonError::into_inner);
        let every = self
            .file_sd_configs
            .iter()
            .map(|c| c.refresh_interval)
            .min()
            .unwrap_or(Duration::from_secs(300));
        let force = st.full_refresh.is_none_or(|t| t.elapsed() >= every);
        if force {
            st.full_refresh = Some(Instant::now());
        }
        st.sd.refresh(&self.file_sd_configs, force);
        groups.extend(st.sd.groups());
        groups
    }

    fn url_of(labels: &Labels) -> Option<String> {
        let address = labels.get(ADDRESS)?;
        if address.is_empty() || address.contains('/') {
            return None;
        }
        Some(format!(
            "{}://{address}{}",
            labels.get(SCHEME).unwrap_or("http"),
            labels.get(ALERTS_PATH).unwrap_or("/api/v2/alerts")
        ))
    }
}

impl alerting::AlertmanagerSet for ConfiguredSet {
    fn discover(&self) -> alerting::Discovered {
        let mut out = alerting::Discovered::default();
        for g in self.groups() {
            for t in &g.targets {
                let mut lb = g.labels.clone();
                for (n, v) in t.iter() {
                    lb.set(n, v);
                }
                lb.set(SCHEME, self.scheme.as_str());
                lb.set(ALERTS_PATH, self.alerts_path.as_str());
                let before = lb.clone();
                if !relabel(&self.relabel, &mut lb) {
                    out.dropped.extend(Self::url_of(&before));
                    continue;
                }
                match Self::url_of(&lb) {
                    Some(u) if !out.active.contains(&u) => out.active.push(u),
                    Some(_) => {}
                    None => {
                        tracing::warn!(group = %g.source, labels = %lb, "alertmanager target without a valid __address__ after relabeling; skipped")
                    }
                }
            }
        }
        out
    }

    fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    fn authorization(&self) -> Result<Option<String>, String> {
        self.credentials.header()
    }

    fn relabel(&self, labels: &mut BTreeMap<String, String>) -> bool {
        self.alert_relabel.is_empty() || relabel_alert(&self.alert_relabel, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerting(yaml: &str) -> AlertingConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn static_and_file_targets_relabeled_into_urls() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("am.yml");
        std::fs::write(
            &file,
            "- targets: ['10.0.0.1:9093', '10.0.0.2:9093']\n  labels: {env: prod}\n- targets: ['10.0.0.3:9093']\n  labels: {env: dev}\n",
        )
        .unwrap();
        let cfg = alerting(&format!(
            r#"
alertmanagers:
  - path_prefix: /am/
    static_configs: [{{targets: ['am.local:9093']}}]
    file_sd_configs: [{{files: ['{}']}}]
    relabel_configs:
      - {{source_labels: [env], regex: dev, action: drop}}
      - {{source_labels: [__address__], regex: '10\.0\.0\.2:9093', target_label: __scheme__, replacement: https}}
"#,
            dir.path().join("*.yml").display()
        ));
        let ams = build(&cfg).unwrap();
        let d = ams.sets[0].discover();
        assert_eq!(
            d.active,
            [
                "http://am.local:9093/am/api/v2/alerts",
                "http://10.0.0.1:9093/am/api/v2/alerts",
                "https://10.0.0.2:9093/am/api/v2/alerts",
            ]
        );
        assert_eq!(d.dropped, ["http://10.0.0.3:9093/am/api/v2/alerts"]);
        // A changed file is picked up at the next discovery.
        std::fs::write(&file, "- targets: ['10.0.0.9:9093']\n").unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let d = ams.sets[0].discover();
        assert_eq!(
            d.active,
            [
                "http://am.local:9093/am/api/v2/alerts",
                "http://10.0.0.9:9093/am/api/v2/alerts",
            ]
        );
    }

    #[test]
    fn alert_relabeling_global_and_per_set() {
        let cfg = alerting(
            r#"
alert_relabel_configs:
  - {source_labels: [severity], regex: debug, action: drop}
  - {target_label: cluster, replacement: eu-1}
alertmanagers:
  - static_configs: [{targets: ['a:9093']}]
    alert_relabel_configs:
      - {action: labeldrop, regex: team}
"#,
        );
        let ams = build(&cfg).unwrap();
        let global = ams.alert_relabel.unwrap();
        let mut debug = BTreeMap::from([("severity".to_string(), "debug".to_string())]);
        assert!(!global(&mut debug));
        let mut page = BTreeMap::from([
            ("severity".to_string(), "page".to_string()),
            ("team".to_string(), "db".to_string()),
        ]);
        assert!(global(&mut page));
        assert_eq!(page.get("cluster").map(String::as_str), Some("eu-1"));
        assert!(ams.sets[0].relabel(&mut page));
        assert!(!page.contains_key("team"));
    }

    #[test]
    fn credentials_from_files_and_config_errors_name_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let cfg = alerting(&format!(
            "alertmanagers:\n  - static_configs: [{{targets: ['a:9093']}}]\n    basic_auth: {{username: vigil, password_file: '{}'}}\n",
            pw.display()
        ));
        let ams = build(&cfg).unwrap();
        // base64("vigil:s3cret")
        assert_eq!(
            ams.sets[0].authorization().unwrap().as_deref(),
            Some("Basic dmlnaWw6czNjcmV0")
        );
        for (yaml, want) in [
            (
                "alertmanagers: [{static_configs: [{targets: ['a:9093']}]}, {basic_auth: {username: u}, authorization: {credentials: x}}]",
                "alerting.alertmanagers[1]: at most one of basic_auth, authorization",
            ),
            (
                "alertmanagers: [{static_configs: [{targets: ['http://a:9093']}]}]",
                "alerting.alertmanagers[0]: static_configs[0]: target \"http://a:9093\" is not HOST:PORT",
            ),
            (
                "alertmanagers: [{relabel_configs: [{action: bogus}]}]",
                "alerting.alertmanagers[0]: relabel_configs[0]:",
            ),
            (
                "alert_relabel_configs: [{action: replace, regex: '('}]",
                "alerting.alert_relabel_configs[0]:",
            ),
            (
                "alertmanagers: [{tls_config: {ca_file: /nonexistent/ca.pem}}]",
                "alerting.alertmanagers[0]: tls_config:",
            ),
            (
                "alertmanagers: [{api_version: v1}]",
                "alerting.alertmanagers[0]: api_version \"v1\"",
            ),
        ] {
            let err = build(&alerting(yaml)).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.starts_with(want)),
                "{yaml}: got {err:?}, want {want}"
            );
        }
    }
}
