//! The alerting APIs the Alerts page reads and writes: Prometheus's
//! `/api/v1/rules` and `/api/v1/alerts`, Alertmanager's `/api/v2/silences`.

use crate::api::{error_from_body, get_json, prom_get, request, ApiError};
use crate::series::LabelSet;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Alert {
    pub labels: LabelSet,
    #[serde(default)]
    pub annotations: LabelSet,
    pub state: String,
    #[serde(rename = "activeAt")]
    pub active_at: Option<String>,
    #[serde(default)]
    pub value: String,
}

impl Alert {
    pub fn name(&self) -> String {
        self.labels.get("alertname").cloned().unwrap_or_default()
    }
    pub fn severity_class(&self) -> &'static str {
        match self.labels.get("severity").map(String::as_str) {
            Some("critical" | "page" | "error") => "sev-critical",
            Some("warning" | "warn") => "sev-warning",
            _ => "sev-info",
        }
    }
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<Alert>,
}

pub async fn fetch_alerts() -> Result<Vec<Alert>, ApiError> {
    Ok(prom_get::<AlertsData>("/api/v1/alerts").await?.alerts)
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Rule {
    pub name: String,
    pub query: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub health: String,
    #[serde(rename = "lastError", default)]
    pub last_error: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub duration: f64,
    #[serde(default)]
    pub alerts: Vec<Alert>,
    #[serde(rename = "evaluationTime", default)]
    pub evaluation_time: f64,
    #[serde(rename = "lastEvaluation", default)]
    pub last_evaluation: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub rules: Vec<Rule>,
    pub interval: f64,
}

#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RuleGroup>,
}

pub async fn fetch_rules() -> Result<Vec<RuleGroup>, ApiError> {
    Ok(prom_get::<RulesData>("/api/v1/rules").await?.groups)
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// Alertmanager's semantics: regexes are anchored; a missing label is "".
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        let hit = if self.is_regex {
            js_sys::RegExp::new(&format!("^(?:{})$", self.value), "").test(v)
        } else {
            v == self.value
        };
        hit == self.is_equal
    }

    pub fn op(&self) -> &'static str {
        match (self.is_equal, self.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SilenceStatus {
    pub state: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "createdBy", default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    pub status: SilenceStatus,
}

impl Silence {
    pub fn silences(&self, a: &Alert) -> bool {
        self.status.state == "active" && self.matchers.iter().all(|m| m.matches(&a.labels))
    }
}

pub async fn fetch_silences() -> Result<Vec<Silence>, ApiError> {
    get_json("/api/v2/silences").await
}

#[derive(Serialize)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    pub comment: String,
}

/// Creates a silence; answers its id.
pub async fn create_silence(s: &NewSilence) -> Result<String, ApiError> {
    #[derive(Deserialize)]
    struct Created {
        #[serde(rename = "silenceID")]
        silence_id: String,
    }
    let body = serde_json::to_string(s).map_err(|e| ApiError(e.to_string()))?;
    let (status, text) = request("POST", "/api/v2/silences", Some(&body)).await?;
    if !(200..300).contains(&status) {
        return Err(error_from_body(status, &text));
    }
    serde_json::from_str::<Created>(&text)
        .map(|c| c.silence_id)
        .map_err(|e| ApiError(format!("unexpected answer creating a silence: {e}")))
}

pub async fn expire_silence(id: &str) -> Result<(), ApiError> {
    let url = format!("/api/v2/silence/{}", crate::api::enc(id));
    let (status, text) = request("DELETE", &url, None).await?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(error_from_body(status, &text))
    }
}

/// RFC 3339 in UTC for unix seconds (what the silences API takes).
pub fn rfc3339(ts: f64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts * 1000.0));
    String::from(d.to_iso_string())
}

/// Parses `alertname="X", severity=~"warn.*"` (braces optional) as the
/// silence form's matchers; the error names the part it could not read.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, String> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if name.is_empty() {
            return Err(format!("expected a label name at character {}", start + 1));
        }
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        let op_start = i;
        while i < chars.len() && matches!(chars[i], '=' | '!' | '~') {
            i += 1;
        }
        let op: String = chars[op_start..i].iter().collect();
        let (is_equal, is_regex) = match op.as_str() {
            "=" => (true, false),
            "!=" => (false, false),
            "=~" => (true, true),
            "!~" => (false, true),
            _ => {
                return Err(format!(
                    "after {name:?}: expected =, !=, =~ or !~, found {op:?}"
                ))
            }
        };
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return Err(format!("the value of {name:?} has no closing quote"));
            }
        } else {
            while i < chars.len() && chars[i] != ',' {
                value.push(chars[i]);
                i += 1;
            }
            value = value.trim().to_string();
        }
        out.push(Matcher {
            name,
            value,
            is_regex,
            is_equal,
        });
    }
    if out.is_empty() {
        return Err("a silence needs at least one matcher".into());
    }
    Ok(out)
}

/// The form text for matchers (the inverse of `parse_matchers`).
pub fn format_matchers(ms: &[Matcher]) -> String {
    ms.iter()
        .map(|m| {
            format!(
                "{}{}\"{}\"",
                m.name,
                m.op(),
                m.value.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_round_trip() {
        let ms = parse_matchers(r#"{alertname="Disk \"full\"", severity=~"warn.*", env!=prod}"#)
            .unwrap();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[0].value, "Disk \"full\"");
        assert!(ms[1].is_regex && ms[1].is_equal);
        assert_eq!((ms[2].is_equal, ms[2].value.as_str()), (false, "prod"));
        assert_eq!(parse_matchers(&format_matchers(&ms)).unwrap(), ms);
    }

    #[test]
    fn matcher_errors_say_where() {
        assert!(parse_matchers("").unwrap_err().contains("at least one"));
        assert!(parse_matchers("a>\"b\"").unwrap_err().contains("\"a\""));
        assert!(parse_matchers("a=\"b")
            .unwrap_err()
            .contains("closing quote"));
        assert!(parse_matchers("=\"b\"")
            .unwrap_err()
            .contains("character 1"));
    }
}
