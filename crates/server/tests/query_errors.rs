//! Every query-string mistake on every route is a `400` whose message names the parameter,
//! the value given and what the parameter takes; never `serde`'s own words, never a value
//! silently clamped or a parameter silently ignored.

mod common;

use common::start;
use serde_json::json;

const SOURCE: &str = "program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\n\
                      parameters:\n  lr: {min: 0.0, max: 1.0}\n";

#[tokio::test]
async fn every_query_mistake_names_the_parameter_the_value_and_the_form() {
    let s = start(None).await;
    let sweep = s.sweep(SOURCE).await;
    let (_, run) = s.post("/api/v1/runs", json!({})).await;
    let run = run["id"].as_str().unwrap().to_string();

    // (path, query, what the message must hold: the parameter, the value, the form)
    let cases: Vec<(String, &str, [&str; 3])> = vec![
        // The older downsampled history read: serde's "invalid digit found in string" before.
        (
            format!("/api/v1/runs/{run}/history"),
            "max_points=-1",
            ["`max_points`", "`-1`", "from 10 to 100000"],
        ),
        // In type but out of range: silently clamped before.
        (
            format!("/api/v1/runs/{run}/history"),
            "max_points=5",
            ["`max_points`", "`5`", "from 10 to 100000"],
        ),
        (
            format!("/api/v1/runs/{run}/history"),
            "after_step=soon",
            ["`after_step`", "`soon`", "an integer"],
        ),
        (
            format!("/api/v1/runs/{run}/history"),
            "max_point=50",
            ["`max_point`", "max_points (an integer", "after_step"],
        ),
        (
            format!("/api/v1/runs/{run}"),
            "history=maybe",
            ["`history`", "`maybe`", "`false`"],
        ),
        (
            format!("/api/v1/runs/{run}/history/columns"),
            "limit=-3",
            ["`limit`", "`-3`", "1 or more"],
        ),
        (
            format!("/api/v1/runs/{run}/history/packed"),
            "after_step=x",
            ["`after_step`", "`x`", "an integer"],
        ),
        (
            format!("/api/v1/runs/{run}/history/packed"),
            "max_points=10",
            ["`max_points`", "keys (", "limit ("],
        ),
        // `GET /runs`: clamped (limit) or ignored (unknown names) before.
        (
            "/api/v1/runs".into(),
            "limit=-1",
            ["`limit`", "`-1`", "from 1 to 100000"],
        ),
        (
            "/api/v1/runs".into(),
            "limit=100001",
            ["`limit`", "`100001`", "from 1 to 100000"],
        ),
        (
            "/api/v1/runs".into(),
            "offset=-5",
            ["`offset`", "`-5`", "0 or more"],
        ),
        (
            "/api/v1/runs".into(),
            "order=up",
            ["`order`", "`up`", "`asc` or `desc`"],
        ),
        (
            "/api/v1/runs".into(),
            "state=done",
            ["`state`", "`done`", "stopped_early"],
        ),
        (
            "/api/v1/runs".into(),
            "sort=speed",
            ["`sort`", "`speed`", "params.NAME"],
        ),
        (
            "/api/v1/runs".into(),
            "range=metric",
            ["`range`", "`metric`", "FIELD:LO:HI"],
        ),
        (
            "/api/v1/runs".into(),
            "range=metric:a:b",
            ["`range`", "`a`", "FIELD:LO:HI"],
        ),
        (
            "/api/v1/runs".into(),
            "swep=abc",
            ["`swep`", "sweep (a sweep id)", "limit ("],
        ),
        (
            "/api/v1/runs".into(),
            "limit=5&limit=6",
            ["`limit`", "given twice", "limit"],
        ),
        (
            "/api/v1/sweeps".into(),
            "projet=a",
            ["`projet`", "project (a project name)", "project"],
        ),
        (
            format!("/api/v1/sweeps/{sweep}/export"),
            "format=xml",
            ["`format`", "`xml`", "`json` (the default) or `csv`"],
        ),
        (
            format!("/api/v1/sweeps/{sweep}/importance"),
            "state=running",
            ["`state`", "`running`", "finished, failed"],
        ),
        // Routes that take no parameters refuse any.
        (
            format!("/api/v1/sweeps/{sweep}"),
            "verbose=1",
            ["`verbose`", "takes no query parameters", "verbose"],
        ),
        (
            format!("/api/v1/sweeps/{sweep}/best"),
            "goal=max",
            ["`goal`", "takes no query parameters", "goal"],
        ),
        (
            format!("/api/v1/sweeps/{sweep}/points"),
            "limit=5",
            ["`limit`", "takes no query parameters", "limit"],
        ),
        (
            format!("/api/v1/runs/{run}/output"),
            "stream=stderr",
            ["`stream`", "takes no query parameters", "stream"],
        ),
    ];
    for (path, query, wanted) in &cases {
        let (status, body) = s.get(&format!("{path}?{query}")).await;
        assert_eq!(status, 400, "{path}?{query}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        for part in wanted {
            assert!(
                error.contains(part),
                "{path}?{query}: `{part}` not in: {error}"
            );
        }
        for raw in [
            "Failed to deserialize",
            "invalid digit",
            "provided string was not",
        ] {
            assert!(
                !error.contains(raw),
                "{path}?{query}: serde's words: {error}"
            );
        }
    }
    // The event stream checks its query before it starts streaming.
    let (status, body) = s.get("/api/v1/events?sweep=a&sweep=b").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("`sweep` is given twice"));

    // The good forms still answer.
    for ok in [
        format!("/api/v1/runs/{run}/history?max_points=10&keys=a,b&after_step=-1"),
        format!("/api/v1/runs/{run}?history=false"),
        "/api/v1/runs?limit=100000&offset=0&order=asc&state=finished,failed&state=crashed".into(),
        format!("/api/v1/sweeps/{sweep}/export?format=csv"),
        "/api/v1/sweeps?project=default".into(),
    ] {
        let (status, body) = s.get(&ok).await;
        assert_eq!(status, 200, "{ok}: {body}");
    }
}
