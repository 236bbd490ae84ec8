//! The dashboards shipped in the binary, for what the agent collects:
//! Node (node_exporter's names), Kubernetes pods and containers (cAdvisor's),
//! etcd, and Vigil itself. They are read-only; saving one keeps a copy
//! under another uid.

use crate::model::Dashboard;

const SOURCES: [&str; 4] = [
    include_str!("../builtin/node.json"),
    include_str!("../builtin/pods.json"),
    include_str!("../builtin/etcd.json"),
    include_str!("../builtin/vigil.json"),
];

/// Every built-in dashboard. A broken one is left out (and fails this
/// crate's tests), never a panic.
pub fn all() -> &'static [Dashboard] {
    // Parsed once: every dashboard request asks whether its uid is built in.
    static ALL: std::sync::OnceLock<Vec<Dashboard>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        SOURCES
            .iter()
            .filter_map(|s| crate::validate::parse(s).ok())
            .collect()
    })
}

pub fn get(uid: &str) -> Option<Dashboard> {
    all().iter().find(|d| d.uid == uid).cloned()
}

pub fn is_builtin(uid: &str) -> bool {
    all().iter().any(|d| d.uid == uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_valid() {
        for s in SOURCES {
            if let Err(e) = crate::validate::parse(s) {
                panic!("{e}\n{}", &s[..80.min(s.len())]);
            }
        }
        let uids: Vec<&str> = all().iter().map(|d| d.uid.as_str()).collect();
        assert_eq!(uids, ["node", "pods", "etcd", "vigil"]);
        assert!(is_builtin("etcd") && !is_builtin("mine"));
    }
}
