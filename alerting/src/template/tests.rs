use super::*;

fn data(value: f64) -> AlertData {
    AlertData {
        labels: BTreeMap::from([
            ("instance".to_string(), "node-1:9100".to_string()),
            ("job".to_string(), "node".to_string()),
        ]),
        external_labels: BTreeMap::from([("cluster".to_string(), "prod".to_string())]),
        external_url: "http://vigil:9090".into(),
        value,
    }
}

fn render(text: &str, value: f64) -> Result<String, String> {
    Template::parse("t", text)?.render_alert(&data(value), None)
}

#[test]
fn prometheus_variables_and_functions() {
    let cases: &[(&str, f64, &str)] = &[
        (
            "{{ $labels.instance }} of {{ $labels.job }}",
            1.0,
            "node-1:9100 of node",
        ),
        ("{{ $value }}", 1e6, "1e+06"),
        ("{{ $value }}", 0.25, "0.25"),
        ("{{ $value }}", 123456.0, "123456"),
        ("{{ .Value }} {{ .Labels.job }}", 3.0, "3 node"),
        (
            "[{{ $labels.nosuch }}][{{ $externalLabels.nope }}]",
            0.0,
            "[][]",
        ),
        (
            "{{ $externalLabels.cluster }} {{ $externalURL }}",
            0.0,
            "prod http://vigil:9090",
        ),
        ("{{ $value | humanize }}", 1234567.0, "1.235M"),
        ("{{ humanize $value }}", 0.0012, "1.2m"),
        ("{{ humanize 0 }}", 0.0, "0"),
        ("{{ $value | humanize1024 }}", 1536.0, "1.5ki"),
        ("{{ $value | humanizePercentage }}", 0.8765, "87.65%"),
        ("{{ $value | humanizeDuration }}", 90061.0, "1d 1h 1m 1s"),
        ("{{ $value | humanizeDuration }}", 1.5, "1.5s"),
        ("{{ $value | humanizeDuration }}", 0.0025, "2.5ms"),
        (
            "{{ $value | humanizeTimestamp }}",
            1_764_756_000.0,
            "2025-12-03 10:00:00 +0000 UTC",
        ),
        ("{{ printf \"%.2f\" $value }}", 1.23456, "1.23"),
        (
            "{{ printf \"%d items, %s, %5.1f|%-4s|\" 3 \"x\" $value \"ab\" }}",
            2.25,
            "3 items, x,   2.2|ab  |",
        ),
        (
            "{{ $labels.job | toUpper }} {{ toLower \"AB\" }} {{ title \"hello world\" }}",
            0.0,
            "NODE ab Hello World",
        ),
        (
            "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}",
            0.0,
            "node-1",
        ),
        (
            "{{ if match \"^node\" $labels.instance }}yes{{ else }}no{{ end }}",
            0.0,
            "yes",
        ),
        (
            "{{ if gt $value 80.0 }}high{{ else if gt $value 50.0 }}mid{{ else }}low{{ end }}",
            60.0,
            "mid",
        ),
        (
            "{{ with $labels.missing }}has{{ else }}none{{ end }}",
            0.0,
            "none",
        ),
        (
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            0.0,
            "instance=node-1:9100;job=node;",
        ),
        ("{{ $x := 5 }}{{ $x }} {{ len $labels }}", 0.0, "5 2"),
        ("a  {{- \" b \" -}}  c", 0.0, "a b c"),
        ("{{/* a comment */}}kept", 0.0, "kept"),
        (
            "{{ index $labels \"job\" }} {{ stripPort $labels.instance }}",
            0.0,
            "node node-1",
        ),
        (
            "{{ \"<b>\" | safeHtml }} {{ html \"<b>\" }}",
            0.0,
            "<b> &lt;b&gt;",
        ),
        (
            "{{ and 1 0 }} {{ or 0 \"x\" }} {{ not true }} {{ eq \"a\" \"b\" \"a\" }}",
            0.0,
            "0 x false true",
        ),
    ];
    for (text, v, want) in cases {
        assert_eq!(render(text, *v).as_deref(), Ok(*want), "{text}");
    }
}

#[test]
fn query_first_value_label() {
    let q = |expr: &str| -> Result<Vec<Value>, String> {
        assert_eq!(expr, "up{job=\"node\"}");
        Ok(vec![Value::Map(BTreeMap::from([
            (
                "Labels".to_string(),
                Value::Map(BTreeMap::from([(
                    "instance".to_string(),
                    Value::Str("a:1".into()),
                )])),
            ),
            ("Value".to_string(), Value::Num(0.5)),
        ]))])
    };
    let t = Template::parse(
        "t",
        "{{ with query \"up{job=\\\"node\\\"}\" }}{{ . | first | value | humanizePercentage }} on {{ . | first | label \"instance\" }}{{ end }}",
    )
    .unwrap();
    assert_eq!(t.render_alert(&data(0.0), Some(&q)).unwrap(), "50% on a:1");
}

#[test]
fn parse_errors_as_go_words_them() {
    let err = |t: &str| Template::parse("__alert_A", t).unwrap_err();
    assert_eq!(
        err("{{ $labels.x "),
        "template: __alert_A:1: unclosed action"
    );
    assert_eq!(
        err("a\n{{ nosuch 1 }}"),
        "template: __alert_A:2: function \"nosuch\" not defined"
    );
    assert_eq!(err("{{ if 1 }}x"), "template: __alert_A:1: unexpected EOF");
    assert_eq!(
        err("x{{ end }}"),
        "template: __alert_A:1: unexpected {{end}}"
    );
    assert!(err("{{ \"open }}").contains("unterminated quoted string"));
    // Variables are checked when the template loads, scoped as in Go.
    assert_eq!(
        err("{{ $nosuch }}"),
        "template: __alert_A:1: undefined variable \"$nosuch\""
    );
    assert_eq!(
        err("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}"),
        "template: __alert_A:1: undefined variable \"$x\""
    );
    assert_eq!(
        err("{{ $y = 2 }}"),
        "template: __alert_A:1: undefined variable \"$y\""
    );
    // A named template sees only `$`.
    assert_eq!(
        err("{{ define \"d\" }}{{ $labels.job }}{{ end }}"),
        "template: __alert_A:1: undefined variable \"$labels\""
    );
    assert!(
        err("{{ define \"d\" }}a{{ end }}{{ define \"d\" }}b{{ end }}")
            .contains("multiple definition of template \"d\"")
    );
    assert!(err("{{ if 1 }}{{ define \"d\" }}a{{ end }}{{ end }}").contains("unexpected <define>"));
    assert!(err("{{ template d }}").contains("quoted template name"));
    assert!(err("{{ define \"d\" }}a").contains("unexpected EOF in define"));
}

#[test]
fn define_template_and_block() {
    let cases: &[(&str, &str)] = &[
        (
            "{{ define \"where\" }}{{ .instance }} ({{ .job }}){{ end }}down: {{ template \"where\" $labels }}",
            "down: node-1:9100 (node)",
        ),
        (
            "{{ template \"t\" }}|{{ define \"t\" }}[{{ . }}]{{ end }}",
            "[<no value>]|",
        ),
        (
            "{{ block \"b\" $labels.job }}<{{ . | toUpper }}>{{ end }}",
            "<NODE>",
        ),
        (
            "{{ $v := 1 }}{{ if $v }}{{ $w := 2 }}{{ $w }}{{ end }}{{ with $x := 3 }}{{ $x }}{{ end }}{{ $v }}",
            "231",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(render(text, 0.0).as_deref(), Ok(*want), "{text}");
    }
    assert_eq!(
        render("{{ template \"missing\" }}", 0.0).unwrap_err(),
        "template: t: template \"missing\" not defined"
    );
    assert!(render(
        "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" 1 }}",
        0.0
    )
    .unwrap_err()
    .contains("maximum template depth"));
}

#[test]
fn render_errors_never_panic() {
    assert!(render("{{ first (query \"up\") }}", 0.0)
        .unwrap_err()
        .contains("not available"));
    assert!(render("{{ humanize \"abc\" }}", 0.0).is_err());
    assert!(render("{{ index $labels 3 }}", 0.0).is_err());
    assert!(render("{{ range 100000000 }}x{{ end }}", 0.0).is_err());
}

#[test]
fn other_delimiters_as_prometheus_adapter_uses_them() {
    let t = Template::parse_with_delims(
        "metricsQuery",
        "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)<<- /* c */ ->> {{x}}",
        "<<",
        ">>",
    )
    .unwrap();
    let dot = Value::Map(BTreeMap::from([
        (
            "Series".to_string(),
            Value::Str("http_requests_total".into()),
        ),
        (
            "LabelMatchers".to_string(),
            Value::Str(r#"namespace="shop""#.into()),
        ),
        ("GroupBy".to_string(), Value::Str("pod".into())),
    ]));
    assert_eq!(
        t.render(dot).unwrap(),
        r#"sum(rate(http_requests_total{namespace="shop"}[2m])) by (pod){{x}}"#
    );
    let e = Template::parse_with_delims("q", "<<.Series", "<<", ">>").unwrap_err();
    assert!(e.contains("unclosed action"), "{e}");
    // Only `$` is in scope: the alert variables are not.
    assert!(Template::parse_with_delims("q", "<<$labels>>", "<<", ">>").is_err());
}
