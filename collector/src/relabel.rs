//! Prometheus relabeling: `relabel_configs` on targets and
//! `metric_relabel_configs` on scraped samples, with every action
//! Prometheus 2 has and the configuration errors it gives. The rules as
//! written (`RelabelConfig`) are in `vigil-config`; here they are checked,
//! compiled and applied.

use crate::labels::{is_valid_label_name, Labels};
use regex::Regex;
use vigil_config::relabel::RelabelConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    #[error("unknown relabel action {0:?}")]
    UnknownAction(String),
    #[error("invalid regex {regex:?}: {detail}")]
    Regex { regex: String, detail: String },
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTarget(&'static str),
    #[error("{target:?} is invalid 'target_label' for {action} action")]
    InvalidTarget {
        target: String,
        action: &'static str,
    },
    #[error("{replacement:?} is invalid 'replacement' for {action} action")]
    InvalidReplacement {
        replacement: String,
        action: &'static str,
    },
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegex(&'static str),
    #[error("{0} action requires only 'source_labels' and `target_label`, and no other fields")]
    OnlySourceAndTarget(&'static str),
}

const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";
const DEFAULT_SEPARATOR: &str = ";";

/// A validated rule, its regex compiled and anchored.
#[derive(Debug, Clone)]
pub struct RelabelRule {
    source_labels: Vec<String>,
    separator: String,
    target_label: String,
    regex: Regex,
    /// The regex is the default `(.*)`, so `replace` with `$1` copies.
    default_regex: bool,
    modulus: u64,
    replacement: String,
    action: Action,
}

/// Whether a rule sets any of the fields that keepequal/dropequal and
/// labeldrop/labelkeep do not take (Prometheus rejects those rules).
fn sets_modulus_separator_or_replacement(cfg: &RelabelConfig, replacement: &str) -> bool {
    cfg.modulus.is_some_and(|m| m != 0)
        || cfg
            .separator
            .as_deref()
            .is_some_and(|s| s != DEFAULT_SEPARATOR)
        || replacement != DEFAULT_REPLACEMENT
}

/// `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`, Prometheus's test for a
/// target label that may hold `$1`-style references.
fn is_valid_target_template(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    let mut need_start = true;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            i += 1;
        } else if c == b'$' {
            if b.get(i + 1) == Some(&b'{') {
                let close = match b[i + 2..].iter().position(|&c| c == b'}') {
                    Some(p) => i + 2 + p,
                    None => return false,
                };
                if close == i + 2 || !b[i + 2..close].iter().all(|&c| word(c)) {
                    return false;
                }
                i = close + 1;
            } else {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && word(b[j]) {
                    j += 1;
                }
                if j == start {
                    return false;
                }
                i = j;
            }
        } else if c.is_ascii_digit() && !need_start {
            i += 1;
        } else {
            return false;
        }
        need_start = false;
    }
    true
}

impl RelabelRule {
    pub fn new(cfg: &RelabelConfig) -> Result<Self, RelabelError> {
        let action = match cfg.action.as_deref() {
            None => Action::Replace,
            Some(a) => Action::parse(a).ok_or_else(|| RelabelError::UnknownAction(a.into()))?,
        };
        let regex_text = cfg.regex.as_deref().unwrap_or(DEFAULT_REGEX);
        let regex =
            Regex::new(&format!("^(?s:{regex_text})$")).map_err(|e| RelabelError::Regex {
                regex: regex_text.into(),
                detail: e.to_string(),
            })?;
        let target = cfg.target_label.clone().unwrap_or_default();
        let replacement = cfg
            .replacement
            .clone()
            .unwrap_or_else(|| DEFAULT_REPLACEMENT.into());
        let name = action.name();
        if action == Action::HashMod && cfg.modulus.unwrap_or(0) == 0 {
            return Err(RelabelError::ZeroModulus);
        }
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(RelabelError::MissingTarget(name));
        }
        let invalid_target = || RelabelError::InvalidTarget {
            target: target.clone(),
            action: name,
        };
        match action {
            Action::Replace if !is_valid_target_template(&target) => return Err(invalid_target()),
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
                if !is_valid_label_name(&target) =>
            {
                return Err(invalid_target())
            }
            _ => {}
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && (cfg.regex.as_deref().is_some_and(|r| r != DEFAULT_REGEX)
                || sets_modulus_separator_or_replacement(cfg, &replacement))
        {
            return Err(RelabelError::OnlySourceAndTarget(name));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (!cfg.source_labels.is_empty()
                || !target.is_empty()
                || sets_modulus_separator_or_replacement(cfg, &replacement))
        {
            return Err(RelabelError::OnlyRegex(name));
        }
        if action == Action::LabelMap && !is_valid_target_template(&replacement) {
            return Err(RelabelError::InvalidReplacement {
                replacement,
                action: name,
            });
        }
        Ok(RelabelRule {
            source_labels: cfg.source_labels.clone(),
            separator: cfg
                .separator
                .clone()
                .unwrap_or_else(|| DEFAULT_SEPARATOR.into()),
            target_label: target,
            default_regex: regex_text == DEFAULT_REGEX,
            regex,
            modulus: cfg.modulus.unwrap_or(0),
            replacement,
            action,
        })
    }

    /// Builds every rule of a list, naming the first bad one (1-based).
    pub fn all(cfgs: &[RelabelConfig]) -> Result<Vec<RelabelRule>, (usize, RelabelError)> {
        cfgs.iter()
            .enumerate()
            .map(|(i, c)| RelabelRule::new(c).map_err(|e| (i + 1, e)))
            .collect()
    }

    fn source_value(&self, labels: &Labels) -> String {
        let mut out = String::new();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                out.push_str(&self.separator);
            }
            out.push_str(labels.get(name).unwrap_or(""));
        }
        out
    }

    /// Applies this rule; `false` means the rule dropped the labels.
    fn apply(&self, labels: &mut Labels) -> bool {
        match self.action {
            Action::LabelMap => {
                let matching: Vec<(String, String)> = labels
                    .iter()
                    .filter(|(n, _)| self.regex.is_match(n))
                    .map(|(n, v)| {
                        let name = self
                            .regex
                            .replace(n, self.replacement.as_str())
                            .into_owned();
                        (name, v.to_string())
                    })
                    .collect();
                for (n, v) in matching {
                    labels.set(n, v);
                }
                return true;
            }
            Action::LabelDrop => {
                labels.retain(|n, _| !self.regex.is_match(n));
                return true;
            }
            Action::LabelKeep => {
                labels.retain(|n, _| self.regex.is_match(n));
                return true;
            }
            _ => {}
        }
        let value = self.source_value(labels);
        match self.action {
            Action::Keep => self.regex.is_match(&value),
            Action::Drop => !self.regex.is_match(&value),
            Action::KeepEqual => labels.get(&self.target_label).unwrap_or("") == value,
            Action::DropEqual => labels.get(&self.target_label).unwrap_or("") != value,
            Action::HashMod => {
                use md5::Digest;
                let digest = md5::Md5::digest(value.as_bytes());
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&digest[8..]);
                let m = u64::from_be_bytes(tail) % self.modulus;
                labels.set(self.target_label.clone(), m.to_string());
                true
            }
            Action::Lowercase => {
                labels.set(self.target_label.clone(), value.to_lowercase());
                true
            }
            Action::Uppercase => {
                labels.set(self.target_label.clone(), value.to_uppercase());
                true
            }
            Action::Replace => {
                if self.default_regex
                    && self.replacement == DEFAULT_REPLACEMENT
                    && is_valid_label_name(&self.target_label)
                {
                    labels.set(self.target_label.clone(), value);
                    return true;
                }
                let Some(caps) = self.regex.captures(&value) else {
                    return true;
                };
                let mut target = String::new();
                caps.expand(&self.target_label, &mut target);
                if !is_valid_label_name(&target) {
                    return true;
                }
                let mut result = String::new();
                caps.expand(&self.replacement, &mut result);
                if result.is_empty() {
                    labels.remove(&target);
                } else {
                    labels.set(target, result);
                }
                true
            }
            Action::LabelMap | Action::LabelDrop | Action::LabelKeep => true,
        }
    }
}

/// Runs the rules in order; `false` when one of them dropped the labels.
pub fn relabel(rules: &[RelabelRule], labels: &mut Labels) -> bool {
    rules.iter().all(|r| r.apply(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<RelabelRule> {
        let cfgs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
        RelabelRule::all(&cfgs).unwrap()
    }

    fn run(yaml: &str, labels: &[(&str, &str)]) -> Option<String> {
        let mut l = Labels::from_pairs(labels.iter().copied());
        relabel(&rules(yaml), &mut l).then(|| l.to_string())
    }

    #[test]
    fn replace_with_captures_and_templated_target() {
        let yaml = r#"
- source_labels: [a, b]
  regex: "f(.*);(.*)"
  target_label: "${1}_x"
  replacement: "$2-$1"
"#;
        assert_eq!(
            run(yaml, &[("a", "foo"), ("b", "bar")]).unwrap(),
            "{a=\"foo\", b=\"bar\", oo_x=\"bar-oo\"}"
        );
        // No match: unchanged.
        assert_eq!(run(yaml, &[("a", "x")]).unwrap(), "{a=\"x\"}");
    }

    #[test]
    fn replace_to_empty_deletes_and_default_copies() {
        let yaml = "- {source_labels: [a], regex: 'x', target_label: b, replacement: ''}\n\
                    - {source_labels: [c], target_label: d}\n";
        assert_eq!(
            run(yaml, &[("a", "x"), ("b", "1"), ("c", "3")]).unwrap(),
            "{a=\"x\", c=\"3\", d=\"3\"}"
        );
    }

    #[test]
    fn keep_drop_and_equal_variants() {
        let keep = "- {source_labels: [job], regex: 'node|etcd', action: keep}";
        assert!(run(keep, &[("job", "node")]).is_some());
        assert!(
            run(keep, &[("job", "nodes")]).is_none(),
            "regex is anchored"
        );
        let drop = "- {source_labels: [job], regex: 'node', action: Drop}";
        assert!(run(drop, &[("job", "node")]).is_none());
        let ke = "- {source_labels: [a], target_label: b, action: keepequal}";
        assert!(run(ke, &[("a", "1"), ("b", "1")]).is_some());
        assert!(run(ke, &[("a", "1"), ("b", "2")]).is_none());
        let de = "- {source_labels: [a], target_label: b, action: dropequal}";
        assert!(run(de, &[("a", "1"), ("b", "1")]).is_none());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Prometheus's relabel_test: "baz" with modulus 1000 gives 976.
        let yaml = "- {source_labels: [a], target_label: h, modulus: 1000, action: hashmod}";
        assert_eq!(
            run(yaml, &[("a", "baz")]).unwrap(),
            "{a=\"baz\", h=\"976\"}"
        );
    }

    #[test]
    fn labelmap_labeldrop_labelkeep_and_case() {
        let yaml = r#"
- {regex: "__meta_kubernetes_pod_label_(.+)", action: labelmap}
- {regex: "__meta_.*", action: labeldrop}
- {source_labels: [app], target_label: app_upper, action: uppercase}
- {source_labels: [app_upper], target_label: app_lower, action: lowercase}
"#;
        assert_eq!(
            run(
                yaml,
                &[("__meta_kubernetes_pod_label_app", "Web"), ("job", "x")]
            )
            .unwrap(),
            "{app=\"Web\", app_lower=\"web\", app_upper=\"WEB\", job=\"x\"}"
        );
        let keep = "- {regex: 'job|instance', action: labelkeep}";
        assert_eq!(
            run(keep, &[("job", "a"), ("x", "b")]).unwrap(),
            "{job=\"a\"}"
        );
    }

    #[test]
    fn configuration_errors_as_prometheus_words_them() {
        let cases = [
            ("- {action: bogus}", "unknown relabel action \"bogus\""),
            (
                "- {source_labels: [a]}",
                "relabel configuration for replace action requires 'target_label' value",
            ),
            (
                "- {source_labels: [a], target_label: h, action: hashmod}",
                "relabel configuration for hashmod requires non-zero modulus",
            ),
            (
                "- {source_labels: [a], target_label: '1bad'}",
                "\"1bad\" is invalid 'target_label' for replace action",
            ),
            (
                "- {source_labels: [a], target_label: '$1', action: lowercase}",
                "\"$1\" is invalid 'target_label' for lowercase action",
            ),
            (
                "- {regex: x, target_label: y, action: labeldrop}",
                "labeldrop action requires only 'regex', and no other fields",
            ),
            (
                "- {source_labels: [a], target_label: b, regex: x, action: keepequal}",
                "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
            ),
            (
                "- {regex: '(', action: drop}",
                "invalid regex \"(\"",
            ),
        ];
        for (yaml, want) in cases {
            let cfgs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
            let (index, err) = RelabelRule::all(&cfgs).unwrap_err();
            assert_eq!(index, 1);
            assert!(err.to_string().starts_with(want), "{yaml}: {err}");
        }
    }

    #[test]
    fn target_templates() {
        for ok in ["a", "a_1", "${1}", "$1x", "x${name}y", "_"] {
            assert!(is_valid_target_template(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "$", "${}", "${a"] {
            assert!(!is_valid_target_template(bad), "{bad}");
        }
    }
}
