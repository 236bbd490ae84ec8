//! Where the kubelet puts container logs, and what the path says:
//! `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`
//! (Kubernetes names cannot hold `_`, so the split is unambiguous), and
//! the `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`
//! symlinks pointing there.

use std::path::Path;

/// A container log file's place in the kubelet's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLogPath {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    /// The container's restart count: each restart gets its own file.
    pub restart: u32,
}

impl PodLogPath {
    /// Reads a path under the pods log directory (`root`, usually
    /// `/var/log/pods`); `None` for anything else (rotated copies such as
    /// `0.log.20261203-104920`, `.gz` files, stray files).
    pub fn parse(root: &Path, path: &Path) -> Option<PodLogPath> {
        let rel = path.strip_prefix(root).ok()?;
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
        let [pod_dir, container, file] = parts[..] else {
            return None;
        };
        let restart: u32 = file.strip_suffix(".log")?.parse().ok()?;
        let mut ids = pod_dir.splitn(3, '_');
        let (namespace, pod, uid) = (ids.next()?, ids.next()?, ids.next()?);
        if [namespace, pod, uid, container]
            .iter()
            .any(|s| s.is_empty())
        {
            return None;
        }
        Some(PodLogPath {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            uid: uid.to_string(),
            container: container.to_string(),
            restart,
        })
    }
}

/// The `/var/log/containers` symlink name for a container: what it says
/// (pod, namespace, container, runtime id).
pub fn parse_containers_link(name: &str) -> Option<(String, String, String, String)> {
    let stem = name.strip_suffix(".log")?;
    let (pod, rest) = stem.split_once('_')?;
    let (namespace, rest) = rest.split_once('_')?;
    let (container, id) = rest.rsplit_once('-')?;
    if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((pod.into(), namespace.into(), container.into(), id.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelet_layout() {
        let root = Path::new("/var/log/pods");
        let p = PodLogPath::parse(
            root,
            Path::new("/var/log/pods/shop_web-0_3f2a9c1e-7b4d-4e21-9a0b-1c2d3e4f5a6b/app/2.log"),
        )
        .unwrap();
        assert_eq!(p.namespace, "shop");
        assert_eq!(p.pod, "web-0");
        assert_eq!(p.uid, "3f2a9c1e-7b4d-4e21-9a0b-1c2d3e4f5a6b");
        assert_eq!(p.container, "app");
        assert_eq!(p.restart, 2);
        for other in [
            "/var/log/pods/shop_web-0_u1/app/0.log.20261203-104920",
            "/var/log/pods/shop_web-0_u1/app/0.log.gz",
            "/var/log/pods/shop_web-0_u1/app",
            "/var/log/pods/shop_web-0/app/0.log",
            "/var/log/other/shop_web-0_u1/app/0.log",
            "/var/log/pods/shop_web-0_u1/app/x/0.log",
        ] {
            assert_eq!(PodLogPath::parse(root, Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn container_symlink_names() {
        let id = "a1".repeat(32);
        assert_eq!(
            parse_containers_link(&format!("web-0_shop_app-{id}.log")),
            Some(("web-0".into(), "shop".into(), "app".into(), id.clone()))
        );
        // Container names may hold '-'; the id is after the last one.
        assert_eq!(
            parse_containers_link(&format!("web-0_shop_log-shipper-{id}.log")).map(|t| t.2),
            Some("log-shipper".into())
        );
        assert_eq!(parse_containers_link("web-0_shop_app.log"), None);
    }
}
