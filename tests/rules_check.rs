//! `vigil check rules` against `promtool check rules` (Prometheus 2.42,
//! Debian) on a corpus of rule files: the same verdict for each, and
//! Vigil's errors name the file, and for a rule its group and number.
//! `tests/rules/newer/` holds fields later Prometheus versions added
//! (group `labels`, `query_offset`): Vigil accepts them, 2.42 does not.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn files(dir: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rules")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn vigil_check(f: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["check", "rules"])
        .arg(f)
        .output()
        .expect("run vigil check rules");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_same_verdicts_as_promtool() {
    let Some(promtool) = common::peer_binary("promtool") else {
        return;
    };
    let mut differ = Vec::new();
    for dir in ["accept", "reject"] {
        for f in files(dir) {
            let p = Command::new(&promtool)
                .args(["check", "rules"])
                .arg(&f)
                .output()
                .expect("run promtool");
            let (ok, text) = vigil_check(&f);
            assert_eq!(
                ok,
                dir == "accept",
                "{}: corpus says {dir}; vigil said:\n{text}",
                f.display()
            );
            if p.status.success() != ok {
                differ.push(format!(
                    "{}: promtool {}, vigil {ok}\n{text}",
                    f.display(),
                    p.status.success()
                ));
            }
        }
    }
    assert!(differ.is_empty(), "verdicts differ:\n{}", differ.join("\n"));
    for f in files("newer") {
        let (ok, text) = vigil_check(&f);
        assert!(ok, "{}: {text}", f.display());
    }
}

#[test]
fn errors_name_file_group_and_rule() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules/reject");
    let (ok, text) = vigil_check(&dir.join("second_rule_bad.yml"));
    assert!(!ok);
    assert!(
        text.contains(
            "second_rule_bad.yml: group \"bad\", rule 2, \"Broken\": could not parse expression"
        ),
        "{text}"
    );
    let (_, text) = vigil_check(&dir.join("bad_label_template.yml"));
    assert!(
        text.contains(
            "group \"g\", rule 1, \"A\": label \"severity\": template: __alert_A:1: unexpected EOF"
        ),
        "{text}"
    );
    let (ok, text) =
        vigil_check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules/accept/full.yml"));
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS: 2 rules found"), "{text}");
    let (ok, text) = vigil_check(Path::new("/nonexistent/rules.yml"));
    assert!(!ok && text.contains("/nonexistent/rules.yml"), "{text}");
}

/// deploy/'s starter rule pack passes both checkers.
#[test]
fn the_starter_rule_pack_passes_both_checkers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cm: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("deploy/server-config.yaml"))
            .expect("server-config.yaml"),
    )
    .expect("yaml");
    let rules = cm["data"]["rules.yml"].as_str().expect("data.rules.yml");
    let server = cm["data"]["server.yaml"]
        .as_str()
        .expect("data.server.yaml");
    assert!(
        server.contains("/etc/vigil/rules.yml"),
        "the server loads the pack: {server}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("rules.yml");
    std::fs::write(&f, rules).expect("write");
    let (ok, text) = vigil_check(&f);
    assert!(ok, "{text}");
    let groups: Vec<&str> = ["node", "pods", "etcd", "vigil"].to_vec();
    for g in groups {
        assert!(rules.contains(&format!("- name: {g}")), "group {g}");
    }
    if let Some(promtool) = common::peer_binary("promtool") {
        let out = Command::new(promtool)
            .args(["check", "rules"])
            .arg(&f)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `vigil test rules` against `promtool test rules` on a corpus of unit
/// test files (tests/rules/unit/): `pass_*` pass and `fail_*` fail under
/// both, and Vigil's failures say which alert or expression and when.
#[test]
fn rule_unit_tests_get_promtools_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules/unit");
    let mut tests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("unit dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pass_") || n.starts_with("fail_"))
        })
        .collect();
    tests.sort();
    assert!(tests.len() >= 6);
    let promtool = common::peer_binary("promtool");
    for t in &tests {
        let want = t
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("pass_"));
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["test", "rules"])
            .arg(t)
            .output()
            .expect("vigil test rules");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), want, "{}:\n{text}", t.display());
        assert!(text.starts_with("Unit Testing:  "), "{text}");
        if let Some(p) = &promtool {
            let ok = Command::new(p)
                .args(["test", "rules"])
                .arg(t)
                .output()
                .expect("promtool test rules")
                .status
                .success();
            assert_eq!(ok, want, "promtool on {}", t.display());
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["test", "rules"])
        .arg(dir.join("fail_labels.yml"))
        .output()
        .expect("vigil test rules");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alertname: InstanceDown, time: 10m"), "{err}");
    assert!(
        err.contains("severity=\"critical\"") && err.contains("severity=\"page\""),
        "{err}"
    );
}
