//! Which pod and container a cgroup belongs to: the kubelet's pod list
//! (`/pods`, a `PodList`) gives each container's runtime id, name and
//! image; the kubelet's cgroup names give the pod's UID and the
//! container's runtime id, under either cgroup driver:
//!
//! - systemd: `kubepods.slice/kubepods-burstable.slice/
//!   kubepods-burstable-pod<uid, '-' as '_'>.slice/cri-containerd-<id>.scope`
//!   (also `crio-<id>.scope`, `docker-<id>.scope`);
//! - cgroupfs: `kubepods/burstable/pod<uid>/<id>`.
//!
//! Guaranteed pods sit directly under `kubepods`.

use serde::Deserialize;
use std::collections::HashMap;

/// A pod as the metrics name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
}

/// A container of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub name: String,
    pub image: String,
    /// When it started (Unix seconds), from its running state.
    pub started: Option<f64>,
}

/// The pods on this node, by UID, and their containers, by runtime id.
#[derive(Debug, Default, Clone)]
pub struct PodIndex {
    pub pods: HashMap<String, PodInfo>,
    pub containers: HashMap<String, ContainerInfo>,
}

#[derive(Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<Pod>,
}

#[derive(Deserialize)]
struct Pod {
    metadata: Metadata,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    namespace: String,
    uid: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    #[serde(default)]
    image: String,
    #[serde(default, rename = "containerID")]
    container_id: String,
    #[serde(default)]
    state: Option<ContainerState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerState {
    running: Option<Running>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Running {
    started_at: Option<String>,
}

impl PodIndex {
    /// Reads a `PodList` (the kubelet's `/pods`, or the API server's pods
    /// of this node).
    pub fn from_json(body: &[u8]) -> Result<PodIndex, String> {
        let list: PodList =
            serde_json::from_slice(body).map_err(|e| format!("reading the pod list: {e}"))?;
        let mut index = PodIndex::default();
        for pod in list.items {
            let s = &pod.status;
            let statuses = s
                .container_statuses
                .iter()
                .chain(&s.init_container_statuses)
                .chain(&s.ephemeral_container_statuses);
            for c in statuses {
                // `containerd://<id>`, `cri-o://<id>`, `docker://<id>`.
                let Some((_, id)) = c.container_id.split_once("://") else {
                    continue;
                };
                let started = c
                    .state
                    .as_ref()
                    .and_then(|st| st.running.as_ref())
                    .and_then(|r| r.started_at.as_deref())
                    .and_then(rfc3339_seconds);
                index.containers.insert(
                    id.to_string(),
                    ContainerInfo {
                        name: c.name.clone(),
                        image: c.image.clone(),
                        started,
                    },
                );
            }
            index.pods.insert(
                pod.metadata.uid,
                PodInfo {
                    namespace: pod.metadata.namespace,
                    name: pod.metadata.name,
                },
            );
        }
        Ok(index)
    }
}

/// What a kubelet cgroup path names.
#[derive(Debug, PartialEq, Eq)]
pub enum CgroupKind {
    /// A pod's cgroup: its UID.
    Pod(String),
    /// A container's cgroup: its pod's UID and its runtime id.
    Container { pod_uid: String, id: String },
}

/// Reads a cgroup path (relative to the cgroup root, `/`-separated) as
/// the kubelet lays it out; `None` for anything else (system services,
/// the QoS slices themselves, runtime helper scopes such as conmon).
pub fn classify(path: &str) -> Option<CgroupKind> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let root = parts
        .iter()
        .position(|p| *p == "kubepods" || *p == "kubepods.slice")?;
    let mut uid = None;
    let mut rest = parts[root + 1..].iter();
    for part in rest.by_ref() {
        if let Some(u) = pod_uid(part) {
            uid = Some(u);
            break;
        }
        if !is_qos(part) {
            return None;
        }
    }
    let uid = uid?;
    match rest.next() {
        None => Some(CgroupKind::Pod(uid)),
        Some(c) => {
            let id = container_id(c)?;
            // Deeper cgroups (a container's own children) are not containers.
            if rest.next().is_some() {
                return None;
            }
            Some(CgroupKind::Container { pod_uid: uid, id })
        }
    }
}

fn is_qos(part: &str) -> bool {
    matches!(
        part,
        "burstable" | "besteffort" | "kubepods-burstable.slice" | "kubepods-besteffort.slice"
    )
}

/// `pod<uid>` (cgroupfs) or `kubepods[-qos]-pod<uid with _>.slice` (systemd).
fn pod_uid(part: &str) -> Option<String> {
    if let Some(uid) = part.strip_prefix("pod") {
        return looks_like_uid(uid).then(|| uid.to_string());
    }
    let name = part.strip_suffix(".slice")?;
    let (_, uid) = name.rsplit_once("-pod")?;
    let uid = uid.replace('_', "-");
    looks_like_uid(&uid).then_some(uid)
}

fn looks_like_uid(s: &str) -> bool {
    s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// A container's runtime id from its cgroup name.
fn container_id(part: &str) -> Option<String> {
    let id = match part.strip_suffix(".scope") {
        Some(scope) => {
            if scope.starts_with("crio-conmon-") {
                return None;
            }
            ["cri-containerd-", "crio-", "docker-", "cri-dockerd-"]
                .iter()
                .find_map(|p| scope.strip_prefix(p))?
        }
        None => part,
    };
    (id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// Seconds since the epoch of an RFC 3339 time as Kubernetes writes them.
pub fn rfc3339_seconds(s: &str) -> Option<f64> {
    crate::rfc3339::parse_nanos(s).map(|ns| ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_cgroup_names_under_both_drivers() {
        let uid = "3f2a9c1e-7b4d-4e21-9a0b-1c2d3e4f5a6b";
        let sd_uid = uid.replace('-', "_");
        let id = "a".repeat(64);
        assert_eq!(
            classify(&format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{sd_uid}.slice/cri-containerd-{id}.scope")),
            Some(CgroupKind::Container { pod_uid: uid.into(), id: id.clone() })
        );
        assert_eq!(
            classify(&format!("/kubepods.slice/kubepods-pod{sd_uid}.slice")),
            Some(CgroupKind::Pod(uid.into()))
        );
        assert_eq!(
            classify(&format!("/kubepods/besteffort/pod{uid}/{id}")),
            Some(CgroupKind::Container {
                pod_uid: uid.into(),
                id: id.clone()
            })
        );
        assert_eq!(
            classify(&format!("/kubepods/pod{uid}/crio-{id}.scope")),
            Some(CgroupKind::Container {
                pod_uid: uid.into(),
                id
            })
        );
        for other in [
            "/system.slice/containerd.service",
            "/kubepods.slice/kubepods-burstable.slice",
            "/kubepods",
            &format!("/kubepods/pod{uid}/crio-conmon-{}.scope", "b".repeat(64)),
            &format!("/kubepods/pod{uid}/{}/child", "c".repeat(64)),
            "/user.slice/pod1234",
        ] {
            assert_eq!(classify(other), None, "{other}");
        }
    }

    #[test]
    fn pod_list_gives_names_images_and_start_times() {
        let body = br#"{"kind":"PodList","items":[{"metadata":{"name":"web-0","namespace":"shop","uid":"u-1234567890"},
          "status":{"containerStatuses":[{"name":"web","image":"nginx:1.27","containerID":"containerd://abc123abc123",
            "state":{"running":{"startedAt":"2026-12-03T10:00:00Z"}}}],
            "initContainerStatuses":[{"name":"init","image":"busybox","containerID":"containerd://def456def456","state":{"terminated":{}}}]}},
          {"metadata":{"name":"pending","namespace":"shop","uid":"u-0987654321"},"status":{}}]}"#;
        let idx = PodIndex::from_json(body).unwrap();
        assert_eq!(idx.pods["u-1234567890"].name, "web-0");
        assert_eq!(idx.pods.len(), 2);
        let web = &idx.containers["abc123abc123"];
        assert_eq!(
            (web.name.as_str(), web.image.as_str()),
            ("web", "nginx:1.27")
        );
        assert_eq!(web.started, Some(1_796_292_000.0));
        assert_eq!(idx.containers["def456def456"].started, None);
        assert!(PodIndex::from_json(b"{not json")
            .unwrap_err()
            .contains("pod list"));
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(rfc3339_seconds("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(rfc3339_seconds("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:01.5Z"), Some(1.5));
        assert_eq!(rfc3339_seconds("yesterday"), None);
    }
}
