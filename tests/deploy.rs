//! deploy/: the kustomization renders (namespace, common labels, image),
//! every rendered object validates strictly against a current Kubernetes
//! schema (`kubernetes-validate`, from PyPI), and the agent config the
//! DaemonSet mounts is one the agent accepts.

use serde::Deserialize;
use serde_yaml::Value;
use std::path::Path;
use std::process::Command;

/// Kinds that live outside namespaces (the rest get the kustomization's).
const CLUSTER_KINDS: [&str; 3] = ["Namespace", "ClusterRole", "ClusterRoleBinding"];

fn set_images(v: &mut Value, image: &str) {
    match v {
        Value::Mapping(m) => {
            for key in ["containers", "initContainers"] {
                if let Some(Value::Sequence(cs)) = m.get_mut(key) {
                    for c in cs {
                        if c.get("image").and_then(Value::as_str) == Some("vigil") {
                            c["image"] = Value::String(image.to_string());
                        }
                    }
                }
            }
            for (_, child) in m.iter_mut() {
                set_images(child, image);
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(|c| set_images(c, image)),
        _ => {}
    }
}

/// What `kubectl kustomize deploy/` does with this kustomization's fields.
fn render(dir: &Path) -> Vec<Value> {
    let k: Value = serde_yaml::from_str(
        &std::fs::read_to_string(dir.join("kustomization.yaml")).expect("kustomization.yaml"),
    )
    .expect("kustomization parses");
    let known = [
        "apiVersion",
        "kind",
        "namespace",
        "labels",
        "resources",
        "images",
    ];
    for key in k.as_mapping().expect("a mapping").keys() {
        let key = key.as_str().unwrap_or("");
        assert!(known.contains(&key), "this renderer does not know {key:?}");
    }
    let namespace = k["namespace"].as_str().expect("namespace").to_string();
    let image = &k["images"][0];
    let image = format!(
        "{}:{}",
        image["newName"].as_str().expect("newName"),
        image["newTag"].as_str().expect("newTag")
    );
    let labels = k["labels"][0]["pairs"].clone();
    let mut out = Vec::new();
    for r in k["resources"].as_sequence().expect("resources") {
        let file = dir.join(r.as_str().expect("resource path"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let mut v =
                Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let kind = v["kind"].as_str().unwrap_or("").to_string();
            if !CLUSTER_KINDS.contains(&kind.as_str()) {
                v["metadata"]["namespace"] = Value::String(namespace.clone());
            }
            if let Value::Mapping(pairs) = &labels {
                if !v["metadata"]["labels"].is_mapping() {
                    v["metadata"]["labels"] = Value::Mapping(Default::default());
                }
                for (lk, lv) in pairs {
                    v["metadata"]["labels"][lk.clone()] = lv.clone();
                }
            }
            set_images(&mut v, &image);
            out.push(v);
        }
    }
    out
}

#[test]
fn manifests_render_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let objects = render(&dir);
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for want in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "StatefulSet",
        "Service",
        "ConfigMap",
    ] {
        assert!(kinds.contains(&want), "no {want} in {kinds:?}");
    }
    // The agent config in its ConfigMap is one the agent accepts.
    let agent_cm = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "vigil-agent")
        .expect("agent ConfigMap");
    let agent_yaml = agent_cm["data"]["agent.yaml"].as_str().expect("agent.yaml");
    // Every $(VAR) it uses is one the DaemonSet's container sets.
    let ds = objects
        .iter()
        .find(|o| o["kind"] == "DaemonSet")
        .expect("agent DaemonSet");
    let env: Vec<String> = ds["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect();
    let cfg = collector::scrape_config::AgentConfig::parse_with_env(agent_yaml, |name| {
        env.iter()
            .any(|e| e == name)
            .then(|| format!("value-of-{name}"))
    })
    .unwrap_or_else(|e| panic!("the DaemonSet's agent.yaml: {e}"));
    assert!(cfg.node.is_some() && cfg.containers.is_some() && !cfg.remote_write.is_empty());
    let jobs: Vec<&str> = cfg
        .scrape_configs
        .iter()
        .map(|s| s.job_name.as_str())
        .collect();
    assert_eq!(
        jobs,
        ["kubernetes-pods", "kubelet-resource", "kubelet-cadvisor"]
    );

    let rendered = tempfile::NamedTempFile::new().expect("temp file");
    let text: Vec<String> = objects
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("yaml"))
        .collect();
    std::fs::write(rendered.path(), text.join("---\n")).expect("write rendered");
    let out = match Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(rendered.path())
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "kubernetes-validate is required in CI (scripts/test.sh installs it): {e}"
            );
            eprintln!("skipping validation: kubernetes-validate not installed");
            return;
        }
    };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kubernetes-validate refused:\n{report}"
    );
    assert!(!report.contains("ERROR"), "{report}");
}
