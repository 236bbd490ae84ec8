//! PromQL over HTTP end to end: data written with the import API, read
//! back with /api/v1/query and /api/v1/query_range as Grafana would.

mod common;

use common::*;
use serde_json::{json, Value};

/// Two counters scraped every 15 s for 10 minutes, ending 1 minute ago.
fn load(v: &Vigil) -> i64 {
    let end = (now_ms() / 1000 - 60) * 1000;
    let start = end - 600_000;
    let mut body = String::new();
    for i in 0..=40 {
        let t = start + i * 15_000;
        body += &format!(
            "http_requests_total{{job=\"api\",instance=\"a\"}} {} {t}\n",
            i * 30
        );
        body += &format!(
            "http_requests_total{{job=\"api\",instance=\"b\"}} {} {t}\n",
            i * 15
        );
    }
    let (code, msg) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        body.as_bytes(),
    );
    assert_eq!(code, 204, "{msg}");
    end
}

fn query(v: &Vigil, params: &str) -> (u16, Value) {
    get_json(&v.url(&format!("/api/v1/query?{params}")))
}

#[test]
fn instant_and_range_queries_answer_in_prometheus_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let end = load(&v);
    let t = end / 1000;

    // rate over 2 m: 30/15 s = 2/s and 1/s.
    let (code, j) = query(
        &v,
        &format!(
            "query={}&time={t}",
            enc("sum by (instance) (rate(http_requests_total[2m]))")
        ),
    );
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["status"], "success");
    assert_eq!(j["data"]["resultType"], "vector");
    let mut result = j["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|r| r["metric"]["instance"].as_str().unwrap().to_string());
    assert_eq!(result[0]["metric"], json!({"instance": "a"}));
    let value = |r: &Value| -> f64 { r["value"][1].as_str().unwrap().parse().unwrap() };
    assert_eq!(result[0]["value"][0], json!(t));
    assert!((value(&result[0]) - 2.0).abs() < 1e-9, "{j}");
    assert!((value(&result[1]) - 1.0).abs() < 1e-9, "{j}");

    // Scalars and strings.
    let (_, j) = query(&v, &format!("query={}&time={t}.5", enc("1 + 2")));
    assert_eq!(
        j["data"],
        json!({"resultType": "scalar", "result": [t as f64 + 0.5, "3"]})
    );
    let (_, j) = query(&v, &format!("query={}&time={t}", enc("\"hello\"")));
    assert_eq!(j["data"]["result"], json!([t, "hello"]));

    // A range query: one point per step, labels sorted, the name kept by selectors.
    let url = v.url(&format!(
        "/api/v1/query_range?query={}&start={}&end={t}&step=60",
        enc(r#"http_requests_total{instance="b"}"#),
        t - 120
    ));
    let (code, j) = get_json(&url);
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["data"]["resultType"], "matrix");
    let series = &j["data"]["result"][0];
    assert_eq!(
        series["metric"],
        json!({"__name__": "http_requests_total", "instance": "b", "job": "api"})
    );
    assert_eq!(
        series["values"],
        json!([[t - 120, "480"], [t - 60, "540"], [t, "600"]])
    );

    // POST with a form body answers the same.
    let form = format!("query={}&time={t}", enc("count(http_requests_total)"));
    let (code, body) = post(
        &v.url("/api/v1/query"),
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let j: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["data"]["result"][0]["value"], json!([t, "2"]));

    // RFC 3339 times and a duration step.
    let start = chrono_free_rfc3339(t - 60);
    let url = v.url(&format!(
        "/api/v1/query_range?query={}&start={start}&end={t}&step=30s",
        enc("vector(1)")
    ));
    let (code, j) = get_json(&url);
    assert_eq!(code, 200, "{j}");
    assert_eq!(
        j["data"]["result"][0]["values"].as_array().unwrap().len(),
        3
    );
}

/// Formats Unix seconds as RFC 3339 (UTC) without a date library.
fn chrono_free_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn query_errors_have_prometheus_types_and_codes() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let end = load(&v);
    let t = end / 1000;
    let cases: Vec<(String, u16, &str, &str)> = vec![
        (
            format!("query={}", enc("sum(")),
            400,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        ("query=".into(), 400, "bad_data", "no expression found"),
        (
            "query=up&time=yesterday".to_string(),
            400,
            "bad_data",
            "invalid parameter \"time\"",
        ),
        (
            format!(
                "query={}&time={t}",
                enc("http_requests_total + on() group_left http_requests_total")
            ),
            422,
            "execution",
            "many-to-many matching not allowed",
        ),
        (
            format!(
                "query={}&time={t}",
                enc("label_replace(http_requests_total, \"instance\", \"x\", \"\", \"\")")
            ),
            422,
            "execution",
            "same labelset",
        ),
        (
            "query=up&timeout=abc".to_string(),
            400,
            "bad_data",
            "invalid parameter \"timeout\"",
        ),
    ];
    for (params, code, ty, msg) in cases {
        let (c, j) = query(&v, &params);
        assert_eq!(c, code, "{params}: {j}");
        assert_eq!(j["status"], "error", "{params}");
        assert_eq!(j["errorType"], ty, "{params}: {j}");
        assert!(j["error"].as_str().unwrap().contains(msg), "{params}: {j}");
    }
    let range = |params: &str| get_json(&v.url(&format!("/api/v1/query_range?{params}")));
    let (c, j) = range(&format!("query=up&start={}&end={t}&step=0", t - 60));
    assert_eq!((c, j["errorType"].as_str()), (400, Some("bad_data")), "{j}");
    let (c, j) = range(&format!("query=up&start={}&end={t}&step=1", t - 20_000));
    assert_eq!(c, 400, "{j}");
    assert!(
        j["error"].as_str().unwrap().contains("11,000 points"),
        "{j}"
    );
    let (c, j) = range(&format!(
        "query={}&start={}&end={t}&step=15",
        enc("up[5m]"),
        t - 60
    ));
    assert_eq!(c, 400, "{j}");
    assert!(j["error"].as_str().unwrap().contains("range vector"), "{j}");
    let (c, j) = range(&format!("query=up&start={t}&end={}&step=15", t - 60));
    assert_eq!(c, 400, "{j}");
}
