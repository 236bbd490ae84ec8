//! Go `text/template` as Prometheus rule authors use it in labels and
//! annotations: `{{ $labels.x }}`, `{{ $value | humanize }}`, `if`/`else`,
//! `range`, `with`, variables, `define`/`template`/`block`, pipelines, Go's builtins (`eq`, `printf`,
//! `len`, `index`, ...) and Prometheus's functions (`humanize*`, `query`,
//! `first`, `label`, `value`, `reReplaceAll`, `match`, `title`, ...).
//!
//! Parse errors (unclosed actions, unknown functions, undefined variables,
//! unbalanced `{{end}}`) are found when the rule file loads, worded as Go words them;
//! a failure while rendering becomes the rendered text's error, never a
//! panic.

mod exec;
mod format;
mod funcs;
mod parse;

pub use exec::{QueryFn, Value};
pub use format::{go_float, go_printf};

use std::collections::BTreeMap;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    source: String,
    parsed: parse::Parsed,
}

/// What an alert's templates see.
#[derive(Debug, Clone, Default)]
pub struct AlertData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

impl Template {
    /// Parses `text`; `name` is used in errors (`template: NAME:LINE: ...`).
    pub fn parse(name: &str, text: &str) -> Result<Template, String> {
        let parsed =
            parse::parse(text).map_err(|(line, msg)| format!("template: {name}:{line}: {msg}"))?;
        Ok(Template {
            name: name.to_string(),
            source: text.to_string(),
            parsed,
        })
    }

    /// Parses `text` whose actions are delimited by `left` and `right`
    /// (Go's `Template.Delims`), with only `$` in scope: a template that
    /// renders a data value of its own ([`Template::render`]).
    pub fn parse_with_delims(
        name: &str,
        text: &str,
        left: &'static str,
        right: &'static str,
    ) -> Result<Template, String> {
        let parsed = parse::parse_with(text, parse::Delims { left, right }, &["$"])
            .map_err(|(line, msg)| format!("template: {name}:{line}: {msg}"))?;
        Ok(Template {
            name: name.to_string(),
            source: text.to_string(),
            parsed,
        })
    }

    /// Renders with `dot` as `.` (and `$`).
    pub fn render(&self, dot: Value) -> Result<String, String> {
        exec::render(&self.parsed, dot, Vec::new(), None)
            .map_err(|e| format!("template: {}: {e}", self.name))
    }

    /// Text taken as it is (a recording rule's label value).
    pub fn literal(text: &str) -> Template {
        Template {
            name: String::new(),
            source: text.to_string(),
            parsed: parse::Parsed {
                nodes: vec![parse::Node::Text(text.to_string())],
                defs: parse::Defs::new(),
            },
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders with Prometheus's alert variables (`$labels`, `$value`,
    /// `$externalLabels`, `$externalURL`, and the same as fields of `.`).
    pub fn render_alert(
        &self,
        data: &AlertData,
        query: Option<&QueryFn<'_>>,
    ) -> Result<String, String> {
        let map = |m: &BTreeMap<String, String>| {
            Value::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                    .collect(),
            )
        };
        let labels = map(&data.labels);
        let external = map(&data.external_labels);
        let dot = Value::Map(BTreeMap::from([
            ("Labels".to_string(), labels.clone()),
            ("ExternalLabels".to_string(), external.clone()),
            (
                "ExternalURL".to_string(),
                Value::Str(data.external_url.clone()),
            ),
            ("Value".to_string(), Value::Num(data.value)),
        ]));
        let vars = vec![
            ("$labels".to_string(), labels),
            ("$externalLabels".to_string(), external),
            (
                "$externalURL".to_string(),
                Value::Str(data.external_url.clone()),
            ),
            ("$value".to_string(), Value::Num(data.value)),
        ];
        exec::render(&self.parsed, dot, vars, query)
            .map_err(|e| format!("template: {}: {e}", self.name))
    }
}

#[cfg(test)]
mod tests;
