//! Kubernetes label selectors (`app=web,tier!=db,env in (a,b),!legacy`)
//! and the field selectors metrics-server takes (`metadata.name`,
//! `metadata.namespace`), parsed from the query string and matched
//! against an object's labels, with errors that name the requirement that
//! is wrong.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    GreaterThan(i64),
    LessThan(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` parameter as the API server does.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(format!(
                    "unable to parse requirement: empty requirement in {text:?}"
                ));
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = labels.get(&r.key);
            match &r.op {
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Equals(x) => v == Some(x),
                Op::NotEquals(x) => v != Some(x),
                Op::In(xs) => v.is_some_and(|v| xs.contains(v)),
                Op::NotIn(xs) => v.is_none_or(|v| !xs.contains(v)),
                Op::GreaterThan(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::LessThan(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

impl LabelSelector {
    /// The requirements as PromQL label matchers, sorted by key, as
    /// prometheus-adapter writes them (`in` as `=~"a|b"`, exists as
    /// `!=""`); `>` and `<` have no PromQL form.
    pub fn promql_matchers(&self) -> Result<Vec<String>, String> {
        let mut reqs: Vec<&Requirement> = self.requirements.iter().collect();
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        reqs.iter()
            .map(|r| {
                let k = &r.key;
                if !tsdb::labels::is_valid_label_name(k) {
                    return Err(format!("{k:?} is not a label name of a metric"));
                }
                Ok(match &r.op {
                    Op::Equals(v) => format!("{k}={v:?}"),
                    Op::NotEquals(v) => format!("{k}!={v:?}"),
                    Op::In(vs) => format!("{k}=~{:?}", vs.join("|")),
                    Op::NotIn(vs) => format!("{k}!~{:?}", vs.join("|")),
                    Op::Exists => format!("{k}!=\"\""),
                    Op::DoesNotExist => format!("{k}=\"\""),
                    Op::GreaterThan(_) | Op::LessThan(_) => {
                        return Err(format!(
                            "the requirement on {k:?} (> or <) has no PromQL matcher"
                        ))
                    }
                })
            })
            .collect()
    }

    /// Each requirement's values by key, joined by `|` (empty for exists
    /// and does-not-exist): prometheus-adapter's `.LabelValuesByName`.
    pub fn values_by_key(&self) -> Vec<(String, String)> {
        self.requirements
            .iter()
            .map(|r| {
                let v = match &r.op {
                    Op::Equals(v) | Op::NotEquals(v) => v.clone(),
                    Op::In(vs) | Op::NotIn(vs) => vs.join("|"),
                    Op::GreaterThan(n) | Op::LessThan(n) => n.to_string(),
                    Op::Exists | Op::DoesNotExist => String::new(),
                };
                (r.key.clone(), v)
            })
            .collect()
    }

    /// As a `metav1.LabelSelector` (`matchLabels`, `matchExpressions`);
    /// `null` when empty.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        if self.requirements.is_empty() {
            return serde_json::Value::Null;
        }
        let mut labels = serde_json::Map::new();
        let mut exprs = Vec::new();
        for r in &self.requirements {
            let (op, values): (&str, Vec<String>) = match &r.op {
                Op::Equals(v) => {
                    labels.insert(r.key.clone(), json!(v));
                    continue;
                }
                Op::NotEquals(v) => ("NotIn", vec![v.clone()]),
                Op::In(vs) => ("In", vs.clone()),
                Op::NotIn(vs) => ("NotIn", vs.clone()),
                Op::Exists => ("Exists", Vec::new()),
                Op::DoesNotExist => ("DoesNotExist", Vec::new()),
                Op::GreaterThan(n) => ("Gt", vec![n.to_string()]),
                Op::LessThan(n) => ("Lt", vec![n.to_string()]),
            };
            let mut e = json!({"key": r.key, "operator": op});
            if !values.is_empty() {
                e["values"] = json!(values);
            }
            exprs.push(e);
        }
        let mut out = serde_json::Map::new();
        if !labels.is_empty() {
            out.insert("matchLabels".into(), serde_json::Value::Object(labels));
        }
        if !exprs.is_empty() {
            out.insert("matchExpressions".into(), json!(exprs));
        }
        serde_json::Value::Object(out)
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let bad = |why: &str| format!("unable to parse requirement {part:?}: {why}");
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key).map_err(|e| bad(&e))?;
        return Ok(Requirement {
            key: key.into(),
            op: Op::DoesNotExist,
        });
    }
    // Set operators: `key in (a,b)`, `key notin (a,b)`.
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let rest = words[1].trim_start();
        for (word, not) in [("notin", true), ("in", false)] {
            if let Some(list) = rest.strip_prefix(word) {
                // The word alone (`in`, not `inner=...`): a set operator.
                if !(list.is_empty() || list.starts_with(['(', ' ', '\t'])) {
                    continue;
                }
                let list = list.trim();
                let key = words[0];
                check_key(key).map_err(|e| bad(&e))?;
                let inner = list
                    .strip_prefix('(')
                    .and_then(|l| l.strip_suffix(')'))
                    .ok_or_else(|| bad("expected a parenthesized list of values"))?;
                if inner.trim().is_empty() {
                    return Err(bad(
                        "for 'in' and 'notin', the set of values cannot be empty",
                    ));
                }
                // A set, as the API machinery keeps it: sorted, each once.
                let mut values: Vec<String> =
                    inner.split(',').map(|v| v.trim().to_string()).collect();
                values.sort();
                values.dedup();
                for v in &values {
                    check_value(v).map_err(|e| bad(&e))?;
                }
                let op = if not {
                    Op::NotIn(values)
                } else {
                    Op::In(values)
                };
                return Ok(Requirement {
                    key: key.into(),
                    op,
                });
            }
        }
    }
    for (sym, make) in [
        ("==", Op::Equals as fn(String) -> Op),
        ("!=", Op::NotEquals),
        ("=", Op::Equals),
    ] {
        if let Some((key, value)) = part.split_once(sym) {
            let (key, value) = (key.trim(), value.trim());
            check_key(key).map_err(|e| bad(&e))?;
            check_value(value).map_err(|e| bad(&e))?;
            return Ok(Requirement {
                key: key.into(),
                op: make(value.into()),
            });
        }
    }
    for (sym, gt) in [(">", true), ("<", false)] {
        if let Some((key, value)) = part.split_once(sym) {
            let key = key.trim();
            check_key(key).map_err(|e| bad(&e))?;
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad("the value of > and < must be an integer"))?;
            let op = if gt {
                Op::GreaterThan(n)
            } else {
                Op::LessThan(n)
            };
            return Ok(Requirement {
                key: key.into(),
                op,
            });
        }
    }
    check_key(part).map_err(|e| bad(&e))?;
    Ok(Requirement {
        key: part.into(),
        op: Op::Exists,
    })
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of
/// at most 63 characters (alphanumerics, `-`, `_`, `.`; alphanumeric at
/// both ends).
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(format!("prefix of key {key:?} is not a DNS subdomain"));
        }
    }
    if name.is_empty() {
        return Err(format!("key {key:?} has no name"));
    }
    check_name(name).map_err(|e| format!("key {key:?}: {e}"))
}

/// A label value: empty, or a name as in keys.
fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_name(value).map_err(|e| format!("value {value:?}: {e}"))
}

fn check_name(s: &str) -> Result<(), String> {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let bytes = s.as_bytes();
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    let ok = bytes.first().copied().is_some_and(alnum)
        && bytes.last().copied().is_some_and(alnum)
        && bytes
            .iter()
            .all(|&b| alnum(b) || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err("must consist of alphanumeric characters, '-', '_' or '.', and begin and end with an alphanumeric character".into())
    }
}

/// The field selectors metrics-server honours: equality (or inequality) of
/// `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// (field, value, equal)
    terms: Vec<(Field, String, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value, equal) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, true)
            } else {
                return Err(format!(
                    "invalid selector: {part:?}; can't understand it (want field=value or field!=value)"
                ));
            };
            let field = match key.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => {
                    return Err(format!(
                        "{other:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    ))
                }
            };
            terms.push((field, value.trim().to_string(), equal));
        }
        Ok(FieldSelector { terms })
    }

    pub fn matches(&self, name: &str, namespace: &str) -> bool {
        self.terms.iter().all(|(field, value, equal)| {
            let actual = match field {
                Field::Name => name,
                Field::Namespace => namespace,
            };
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_selects_as_kubernetes_does() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("replicas", "3")]);
        let db = labels(&[("app", "db"), ("app.kubernetes.io/part-of", "shop")]);
        for (sel, on_web, on_db) in [
            ("", true, true),
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("tier!=back", true, true),
            ("app in (web, db)", true, true),
            ("app notin (web)", false, true),
            ("tier notin (front)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app=web,tier=front", true, false),
            ("app.kubernetes.io/part-of=shop", false, true),
            ("replicas>2", true, false),
            ("replicas<2", false, false),
            ("app in (web,db),!tier", false, true),
        ] {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!((s.matches(&web), s.matches(&db)), (on_web, on_db), "{sel}");
        }
    }

    #[test]
    fn bad_label_selectors_are_named() {
        for (sel, why) in [
            ("app=we b", "value \"we b\""),
            ("-app=x", "key \"-app\""),
            ("app in web", "parenthesized"),
            ("app=x,,b=y", "empty requirement"),
            ("n>x", "integer"),
            ("app in ()", "cannot be empty"),
            ("Bad_Prefix/x=y", "DNS subdomain"),
        ] {
            let e = LabelSelector::parse(sel).unwrap_err();
            assert!(e.contains(why), "{sel}: {e}");
        }
    }

    #[test]
    fn selectors_as_promql_matchers_and_as_json() {
        let s = LabelSelector::parse("verb=GET,code in (200,201),!debug,path").unwrap();
        assert_eq!(
            s.promql_matchers().unwrap(),
            [
                r#"code=~"200|201""#,
                r#"debug="""#,
                r#"path!="""#,
                r#"verb="GET""#
            ]
        );
        assert_eq!(
            s.to_json(),
            serde_json::json!({"matchLabels": {"verb": "GET"}, "matchExpressions": [
                {"key": "code", "operator": "In", "values": ["200", "201"]},
                {"key": "debug", "operator": "DoesNotExist"},
                {"key": "path", "operator": "Exists"}]})
        );
        assert!(LabelSelector::parse("n>1")
            .unwrap()
            .promql_matchers()
            .is_err());
        assert_eq!(LabelSelector::default().to_json(), serde_json::Value::Null);
    }

    #[test]
    fn field_selectors_take_name_and_namespace_only() {
        let s = FieldSelector::parse("metadata.namespace=shop,metadata.name!=web-0").unwrap();
        assert!(s.matches("web-1", "shop"));
        assert!(!s.matches("web-0", "shop"));
        assert!(!s.matches("web-1", "other"));
        assert!(FieldSelector::parse("").unwrap().matches("a", "b"));
        let e = FieldSelector::parse("spec.nodeName=n1").unwrap_err();
        assert_eq!(
            e,
            r#""spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
    }

    proptest::proptest! {
        /// Any query string parses or is refused with a message; what
        /// parses matches, converts and echoes without panicking.
        #[test]
        fn any_selector_text_is_handled(text in ".{0,80}", labels in proptest::collection::btree_map("[a-z./]{1,8}", ".{0,4}", 0..4)) {
            if let Ok(s) = LabelSelector::parse(&text) {
                let _ = s.matches(&labels);
                let _ = s.promql_matchers();
                let _ = s.to_json();
                let _ = s.values_by_key();
            }
            if let Ok(f) = FieldSelector::parse(&text) {
                let _ = f.matches("a", "b");
            }
        }
    }
}
