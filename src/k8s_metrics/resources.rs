//! What a Kubernetes client's REST mapper answers for the resources
//! metrics are about: `pod`, `Pod` or `pods` is the core `pods` resource
//! of kind `Pod`, `deployment` is `deployments.apps`. The common built-in
//! resources are known by name; any other is taken as written (the plural
//! as given, the group as given), as prometheus-adapter configs name CRDs
//! with their group.

/// A resource's names and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    /// Plural, lower case: `pods`.
    pub plural: String,
    /// Singular, lower case: `pod` (what label templates see).
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
}

/// (group, version, plural, singular, kind, namespaced)
const KNOWN: &[(&str, &str, &str, &str, &str, bool)] = &[
    ("", "v1", "pods", "pod", "Pod", true),
    ("", "v1", "nodes", "node", "Node", false),
    ("", "v1", "namespaces", "namespace", "Namespace", false),
    ("", "v1", "services", "service", "Service", true),
    ("", "v1", "endpoints", "endpoints", "Endpoints", true),
    (
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
    ),
    (
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
    ),
    (
        "",
        "v1",
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        true,
    ),
    ("", "v1", "configmaps", "configmap", "ConfigMap", true),
    (
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
    ),
    (
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
    ),
    ("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true),
    (
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
    ),
    ("batch", "v1", "jobs", "job", "Job", true),
    ("batch", "v1", "cronjobs", "cronjob", "CronJob", true),
    (
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
    ),
    (
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
    ),
];

fn info(k: &(&str, &str, &str, &str, &str, bool)) -> ResourceInfo {
    ResourceInfo {
        group: k.0.into(),
        version: k.1.into(),
        plural: k.2.into(),
        singular: k.3.into(),
        kind: k.4.into(),
        namespaced: k.5,
    }
}

/// Resolves `resource` (plural, singular or kind, any case) in `group`
/// (empty: any group, the core group first).
pub fn resolve(group: &str, resource: &str) -> ResourceInfo {
    if let Some(known) = resolve_known(group, resource) {
        return known;
    }
    let r = resource.to_ascii_lowercase();
    // Unknown (a CRD): as written; the singular drops a plural `s`.
    let singular = r.strip_suffix('s').unwrap_or(&r).to_string();
    let mut kind = singular.clone();
    if let Some(first) = kind.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    ResourceInfo {
        group: group.into(),
        version: "v1".into(),
        plural: r,
        singular,
        kind,
        namespaced: true,
    }
}

/// Like [`resolve`], but only the built-in resources: what a label-name
/// template may name (`pod`, `namespace`; not `instance` or `le`).
pub fn resolve_known(group: &str, resource: &str) -> Option<ResourceInfo> {
    let r = resource.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|k| {
            (group.is_empty() || k.0 == group)
                && (k.2 == r || k.3 == r || k.4.eq_ignore_ascii_case(&r))
        })
        .map(info)
}

/// A request's `{resource}` segment: `pods`, `deployments.apps`.
pub fn parse_group_resource(text: &str) -> ResourceInfo {
    match text.split_once('.') {
        Some((resource, group)) => resolve(group, resource),
        None => resolve("", text),
    }
}

impl ResourceInfo {
    /// `pods`, `deployments.apps`: as discovery and errors name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `describedObject.apiVersion` as prometheus-adapter writes it
    /// (`group/version`, so `/v1` for the core group).
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_a_rest_mapper_does() {
        assert_eq!(resolve("", "pod").plural, "pods");
        assert_eq!(resolve("", "Pod").kind, "Pod");
        assert_eq!(resolve("", "deployment").qualified(), "deployments.apps");
        assert_eq!(parse_group_resource("deployments.apps").kind, "Deployment");
        assert!(!resolve("", "namespace").namespaced);
        assert_eq!(resolve("", "pods").api_version(), "/v1");
        let crd = resolve("cheese.io", "brand");
        assert_eq!(
            (crd.qualified(), crd.kind.as_str()),
            ("brand.cheese.io".to_string(), "Brand")
        );
    }
}
