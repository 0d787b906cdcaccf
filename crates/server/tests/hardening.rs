//! What no request may do to a real server: drive a tokenless server from a web page (other
//! `Host` names, non-JSON mutations), rewrite a sweep's state by an action that does not
//! apply, grow a list past its cap into a `500`, or make it answer `500` (or panic) at all,
//! whatever the query string or body (a seeded random search over every route).

mod common;

use common::{start, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Map, Value};

const SOURCE: &str = "program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\n\
                      parameters:\n  lr: {min: 0.0, max: 1.0}\n  opt: {values: [adam, sgd]}\n";

/// Send raw: `method path` with these headers and body; the status and the body text.
async fn raw(
    s: &Server,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, String) {
    let mut req = s.http.request(method, format!("{}{path}", s.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_web_page_cannot_drive_a_tokenless_server() {
    let s = start(None).await;
    let id = s.sweep(SOURCE).await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let pause = format!("/api/v1/sweeps/{id}/pause");

    // DNS rebinding: the page's own name in Host, on reads and writes, API and dashboard.
    let evil = format!("evil.example:{port}");
    for (method, path) in [
        (Method::GET, "/api/v1/sweeps".to_string()),
        (Method::GET, "/".to_string()),
        (Method::POST, pause.clone()),
    ] {
        let (status, body) = raw(
            &s,
            method,
            &path,
            &[("host", &evil), ("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
        assert_eq!(status, 421, "{path}: {body}");
        assert!(body.contains("--allowed-host"), "{body}");
    }
    // Loopback names on the server's port pass; another port does not.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let (status, body) = raw(&s, Method::GET, "/api/v1/sweeps", &[("host", &host)], None).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    let (status, _) = raw(
        &s,
        Method::GET,
        "/api/v1/sweeps",
        &[("host", "localhost:1")],
        None,
    )
    .await;
    assert_eq!(status, 421);

    // Simple requests a page may send cross-site: refused before they change anything.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| ("content-type", c))
            .into_iter()
            .collect();
        let (status, body) = raw(&s, Method::POST, &pause, &headers, Some(b"{}".to_vec())).await;
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert!(body.contains("application/json"), "{body}");
    }
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(
        sweep["state"], "running",
        "a refused request changed the sweep"
    );

    // What the clients send passes: JSON, or the client header with no body.
    let (status, body) = raw(
        &s,
        Method::POST,
        &pause,
        &[("content-type", "application/json; charset=utf-8")],
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let resume = format!("/api/v1/sweeps/{id}/resume");
    let (status, body) = raw(
        &s,
        Method::POST,
        &resume,
        &[("x-hyperdial-client", "cli")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_server_with_a_token_relies_on_the_token() {
    let s = start(Some("secret")).await;
    let (status, _) = raw(
        &s,
        Method::POST,
        "/api/v1/sweeps/x/pause",
        &[("host", "box.lan:80"), ("content-type", "text/plain")],
        None,
    )
    .await;
    assert_eq!(status, 401, "without the token");
    let (status, body) = raw(
        &s,
        Method::GET,
        "/api/v1/sweeps",
        &[("host", "box.lan:80"), ("authorization", "Bearer secret")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn actions_that_do_not_apply_answer_409_and_change_nothing() {
    let s = start(None).await;
    let act = |id: &str, action: &str| format!("/api/v1/sweeps/{id}/{action}");

    // A finished sweep with nothing in flight: stopping it again changes nothing (as
    // pausing a paused one), every other action is refused, the state stays.
    let done = s.sweep(SOURCE).await;
    for _ in 0..2 {
        let (status, body) = s.post(&act(&done, "stop"), json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "finished");
    }
    for action in ["cancel", "pause", "resume"] {
        let (status, body) = s.post(&act(&done, action), json!({})).await;
        assert_eq!(status, 409, "{action}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains(&format!("cannot {action} sweep {done}: it is finished")),
            "{message}"
        );
    }
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{done}")).await;
    assert_eq!(sweep["state"], "finished");

    // Stopped with a run in flight: cancel stops that run and the sweep stays finished.
    let stopped = s.sweep(&SOURCE.replace("t.py", "u.py")).await;
    let (_, claim) = s.post(&act(&stopped, "claim"), json!({})).await;
    let run = claim["run"]["id"].as_str().unwrap().to_string();
    s.post(&act(&stopped, "stop"), json!({})).await;
    let (status, body) = s.post(&act(&stopped, "cancel"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "finished");
    let (_, hb) = s
        .post(&format!("/api/v1/runs/{run}/heartbeat"), json!({}))
        .await;
    assert_eq!(hb["stop"], true);

    // A cancelled sweep: stopping it changes nothing, every other action is refused.
    let cancelled = s.sweep(&SOURCE.replace("t.py", "v.py")).await;
    s.post(&act(&cancelled, "cancel"), json!({})).await;
    let (status, body) = s.post(&act(&cancelled, "stop"), json!({})).await;
    assert_eq!(
        (status, &body["state"]),
        (200, &json!("cancelled")),
        "{body}"
    );
    for action in ["cancel", "pause", "resume"] {
        let (status, body) = s.post(&act(&cancelled, action), json!({})).await;
        assert_eq!(status, 409, "{action}: {body}");
    }
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{cancelled}")).await;
    assert_eq!(sweep["state"], "cancelled");
    // Pausing a paused sweep and resuming a running one change nothing and succeed.
    let live = s.sweep(&SOURCE.replace("t.py", "w.py")).await;
    assert_eq!(s.post(&act(&live, "resume"), json!({})).await.0, 200);
    assert_eq!(s.post(&act(&live, "pause"), json!({})).await.0, 200);
    assert_eq!(s.post(&act(&live, "pause"), json!({})).await.0, 200);
}

#[tokio::test]
async fn every_list_a_query_can_grow_is_capped_with_a_400() {
    let s = start(None).await;
    let id = s.sweep(SOURCE).await;
    for _ in 0..5 {
        let (status, _) = s
            .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
            .await;
        assert_eq!(status, 200);
    }
    let values = |n: usize| {
        (0..n)
            .map(|i| format!("{}", i as f64 / 1000.0))
            .collect::<Vec<_>>()
            .join("|")
    };
    // 1,000 values (the case that answered 500) is within the cap and answers.
    let (status, body) = s
        .get(&format!(
            "/api/v1/runs?sweep={id}&in=params.lr:{}",
            values(1000)
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .get(&format!(
            "/api/v1/runs?sweep={id}&in=params.lr:{}",
            values(1001)
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 1000"),
        "{body}"
    );
    let many = (0..5)
        .map(|_| format!("in=params.lr:{}", values(1000)))
        .collect::<Vec<_>>()
        .join("&");
    let (status, body) = s.get(&format!("/api/v1/runs?{many}")).await;
    assert_eq!(status, 400, "{body}");
    let filters = (0..65)
        .map(|_| "range=metric:0:1")
        .collect::<Vec<_>>()
        .join("&");
    let (status, body) = s.get(&format!("/api/v1/runs?{filters}")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = s.get("/api/v1/runs?state=finished,bogus").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("bogus"), "{body}");
    let (_, run) = s.post("/api/v1/runs", json!({})).await;
    let run = run["id"].as_str().unwrap().to_string();
    let keys = (0..65)
        .map(|i| format!("k{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let (status, body) = s
        .get(&format!("/api/v1/runs/{run}/history?keys={keys}"))
        .await;
    assert_eq!(status, 400, "{body}");
    let wide: Map<String, Value> = (0..10_001).map(|i| (format!("m{i}"), json!(1.0))).collect();
    let (status, body) = s
        .post(
            &format!("/api/v1/runs/{run}/metrics"),
            json!({"points": [{"values": wide}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 10000"),
        "{body}"
    );
    let (status, body) = s
        .send(
            Method::PUT,
            &format!("/api/v1/runs/{run}/summary"),
            json!({"": 1}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // A run's config is capped as a whole, however many requests grow it.
    let group = |g: usize, n: usize| -> Value {
        let inner: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
        json!({ format!("g{g}"): inner })
    };
    let config = format!("/api/v1/runs/{run}/config");
    let (status, body) = s.send(Method::PUT, &config, group(0, 6000)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.send(Method::PUT, &config, group(1, 6000)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("would hold 12000 values"),
        "{body}"
    );
    let (_, stored) = s.get(&format!("/api/v1/runs/{run}")).await;
    assert!(
        stored["config"].get("g1").is_none(),
        "nothing of it was kept"
    );
    // Without `keys`, a run with more metrics than one answer holds says what to ask.
    let many: Map<String, Value> = (0..70).map(|i| (format!("m{i}"), json!(1.0))).collect();
    let (status, body) = s
        .post(
            &format!("/api/v1/runs/{run}/metrics"),
            json!({"points": [{"values": many}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.get(&format!("/api/v1/runs/{run}/history")).await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("logged 70 metrics") && error.contains("history/columns"),
        "{error}"
    );
    let (status, body) = s.get("/api/v1/runs?limit=x").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = s
        .get(&format!("/api/v1/runs/{run}/history?max_points=-1"))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].is_string(), "query errors are JSON: {body}");
}

/// A metric batch is read straight into typed points: every malformed value, name or point
/// is a `400` whose message names where it is (`points[i].values.NAME`), nothing of the batch
/// is stored, and a good batch after it is taken whole.
#[tokio::test]
async fn bad_metric_batches_are_refused_with_the_field_named() {
    let s = start(None).await;
    let (_, run) = s.post("/api/v1/runs", json!({})).await;
    let run = run["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/runs/{run}/metrics");
    let cases = [
        (
            json!({"points": [{"values": {"a": 1}}, {"values": {"loss": "x"}}]}),
            "points[1].values.loss",
        ),
        (
            json!({"points": [{"values": {"loss": [1.0]}}]}),
            "points[0].values.loss",
        ),
        (
            json!({"points": [{"values": {"": 1.0}}]}),
            "points[0].values",
        ),
        (
            json!({"points": [{"values": {"a\u{0}b": 1.0}}]}),
            "without NUL",
        ),
        (
            json!({"points": [{"values": {"a": 1}}, {"values": [1]}]}),
            "points[1].values",
        ),
        (
            json!({"points": [{"step": "3", "values": {"a": 1}}]}),
            "points[0].step",
        ),
        (
            json!({"points": [{"step": -1, "values": {"a": 1}}]}),
            "points[0].step",
        ),
        // No step after it to count on to (it wrapped to 0), nor one a double holds exactly.
        (
            json!({"points": [{"step": i64::MAX, "values": {"a": 1}}]}),
            "points[0].step must be from 0 to 9007199254740991",
        ),
        (json!({"points": {"values": {}}}), "points"),
        (json!({"values": {"a": 1}}), "points"),
        (
            json!({"points": [{"values": {"a": 1}}, {"time_ms": -1, "values": {"a": 1}}]}),
            "points[1].time_ms must be from 0",
        ),
    ];
    for (body, names) in cases {
        let (status, answer) = s.post(&path, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(names),
            "{body}: `{error}` should name {names}"
        );
    }
    let (status, answer) = raw(
        &s,
        Method::POST,
        &path,
        &[("content-type", "application/json")],
        Some(br#"{"points": [{"values": {"a": 1e999}}]}"#.to_vec()),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (_, stored) = s.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(
        stored["history"],
        json!([]),
        "no refused batch left anything"
    );
    let (status, answer) = s
        .post(
            &path,
            json!({"points": [{"step": 0, "values": {"a": 1, "b": null, "c": true, "a": 2}}]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3);
    let (_, stored) = s.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(
        stored["history"][0]["values"],
        json!({"a": 2.0, "b": null, "c": 1.0})
    );
}

// ---- random requests -------------------------------------------------------------------

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A query value: a meaningful one, a boundary, or junk.
fn value(rng: &mut StdRng, ids: &[String]) -> String {
    match rng.random_range(0..10) {
        0 => pick(rng, ids).clone(),
        1 => {
            let n = rng.random_range(0..1500);
            let field = pick(
                rng,
                &[
                    "params.lr",
                    "params.opt",
                    "metric",
                    "state",
                    "summary.loss",
                    "number",
                    "x",
                ],
            );
            let list = (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join("|");
            format!("{field}:{list}")
        }
        2 => format!(
            "{}:{}:{}",
            pick(
                rng,
                &[
                    "metric",
                    "params.lr",
                    "runtime_ms",
                    "summary.loss",
                    "bogus",
                    ""
                ]
            ),
            pick(rng, &["", "0", "-1e308", "NaN", "x"]),
            pick(rng, &["", "1", "inf", "1e400"]),
        ),
        3 => {
            let n = rng.random_range(0..100);
            (0..n)
                .map(|_| *pick(rng, &["finished", "running", "", "x"]))
                .collect::<Vec<_>>()
                .join(",")
        }
        4 => (0..rng.random_range(0..40))
            .map(|_| format!("%{:02X}", rng.random::<u8>()))
            .collect(),
        5 => "k,".repeat(rng.random_range(0..200)),
        _ => pick(
            rng,
            &[
                "",
                "0",
                "-1",
                "1",
                "10",
                "99999999999",
                "9223372036854775808",
                "-9223372036854775809",
                "1e309",
                "NaN",
                "true",
                "false",
                "asc",
                "desc",
                "csv",
                "json",
                "xml",
                "params.lr",
                "summary.",
                "params.",
                "é",
                "%00",
                "a b",
                "number",
                "metric",
                "runtime_ms",
            ],
        )
        .to_string(),
    }
}

fn query(rng: &mut StdRng, ids: &[String]) -> String {
    let n = rng.random_range(0..6);
    let mut parts = Vec::new();
    for _ in 0..n {
        let key = pick(
            rng,
            &[
                "sort",
                "order",
                "range",
                "in",
                "state",
                "limit",
                "offset",
                "keys",
                "max_points",
                "format",
                "history",
                "project",
                "sweep",
                "junk",
                "",
            ],
        );
        parts.push(format!("{key}={}", value(rng, ids)));
    }
    parts.join("&")
}

/// A random JSON value, at most `depth` deep.
fn json_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(*pick(rng, &[0.0, -1.0, 1e308, -1e-308, 0.5, 3.0])),
        3 => json!(*pick(rng, &[i64::MIN, -1, 0, 1, i64::MAX])),
        4 => json!(*pick(
            rng,
            &["", "x", "finished", "adam", "stdout", "é\u{0}"]
        )),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| json_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "source",
                "project",
                "file",
                "resume",
                "seed",
                "agent",
                "sweep",
                "host",
                "pid",
                "name",
                "config",
                "argv",
                "git",
                "points",
                "step",
                "time_ms",
                "values",
                "stream",
                "text",
                "exit_code",
                "state",
                "error",
                "notes",
                "loss",
                "",
            ];
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..5) {
                m.insert(pick(rng, &keys).to_string(), json_value(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// A body: a random value, one shaped like what the route takes with odd contents, junk
/// bytes, or nothing.
fn body(rng: &mut StdRng) -> Option<Vec<u8>> {
    match rng.random_range(0..6) {
        0 => None,
        1 => Some((0..rng.random_range(0..64)).map(|_| rng.random::<u8>()).collect()),
        2 => {
            let points: Vec<Value> = (0..rng.random_range(0..20))
                .map(|_| json!({"step": json_value(rng, 0), "time_ms": json_value(rng, 0), "values": json_value(rng, 2)}))
                .collect();
            Some(json!({ "points": points }).to_string().into_bytes())
        }
        3 => Some(
            json!({"source": pick(rng, &[SOURCE, "method: grid\nparameters: {a: {values: [1, 2]}}\n", "{", "method: x"]),
                   "resume": json_value(rng, 0), "seed": json_value(rng, 0), "project": json_value(rng, 0)})
            .to_string()
            .into_bytes(),
        ),
        _ => Some(json_value(rng, 3).to_string().into_bytes()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_at_every_route_never_answer_500() {
    let s = start(None).await;
    let sweep = s.sweep(SOURCE).await;
    let (_, claim) = s
        .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
        .await;
    let run = claim["run"]["id"].as_str().unwrap().to_string();
    s.post(
        &format!("/api/v1/runs/{run}/metrics"),
        json!({"points": [{"values": {"loss": 0.5}}, {"values": {"loss": 0.25}}]}),
    )
    .await;
    let ids = vec![
        sweep.clone(),
        run.clone(),
        "nope".to_string(),
        "%2F..%2F".to_string(),
        "x".repeat(300),
    ];
    let routes: &[(Method, &str)] = &[
        (Method::GET, "/api/v1/openapi.json"),
        (Method::POST, "/api/v1/sweeps"),
        (Method::GET, "/api/v1/sweeps"),
        (Method::GET, "/api/v1/sweeps/{s}"),
        (Method::POST, "/api/v1/sweeps/{s}/claim"),
        (Method::POST, "/api/v1/sweeps/{s}/pause"),
        (Method::POST, "/api/v1/sweeps/{s}/resume"),
        (Method::POST, "/api/v1/sweeps/{s}/stop"),
        (Method::POST, "/api/v1/sweeps/{s}/cancel"),
        (Method::POST, "/api/v1/sweeps/{s}/bogus"),
        (Method::GET, "/api/v1/sweeps/{s}/best"),
        (Method::GET, "/api/v1/sweeps/{s}/export"),
        (Method::GET, "/api/v1/sweeps/{s}/importance"),
        (Method::GET, "/api/v1/sweeps/{s}/points"),
        (Method::PUT, "/api/v1/sweeps/{s}/notes"),
        (Method::GET, "/api/v1/events"),
        (Method::POST, "/api/v1/agents"),
        (Method::POST, "/api/v1/runs"),
        (Method::GET, "/api/v1/runs"),
        (Method::GET, "/api/v1/runs/{r}"),
        (Method::GET, "/api/v1/runs/{r}/history"),
        (Method::POST, "/api/v1/runs/{r}/started"),
        (Method::POST, "/api/v1/runs/{r}/heartbeat"),
        (Method::POST, "/api/v1/runs/{r}/metrics"),
        (Method::POST, "/api/v1/runs/{r}/output"),
        (Method::GET, "/api/v1/runs/{r}/output"),
        (Method::PUT, "/api/v1/runs/{r}/summary"),
        (Method::POST, "/api/v1/runs/{r}/finish"),
        (Method::GET, "/"),
        (Method::GET, "/sweeps/{s}"),
        (Method::GET, "/runs/{r}"),
    ];
    let mut rng = StdRng::seed_from_u64(0x5eed_0010);
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for round in 0..1500 {
        let (method, template) = pick(&mut rng, routes);
        let (s_id, r_id) = if rng.random_bool(0.8) {
            (sweep.clone(), run.clone())
        } else {
            (pick(&mut rng, &ids).clone(), pick(&mut rng, &ids).clone())
        };
        let mut path = template.replace("{s}", &s_id).replace("{r}", &r_id);
        let q = query(&mut rng, &ids);
        if !q.is_empty() {
            path = format!("{path}?{q}");
        }
        let body = if *method == Method::GET {
            None
        } else {
            body(&mut rng)
        };
        let mut req = s
            .http
            .request(method.clone(), format!("{}{path}", s.base))
            .header("content-type", "application/json");
        if let Some(b) = body.clone() {
            req = req.body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        *counts.entry(status).or_default() += 1;
        if template == &"/api/v1/events" {
            drop(r); // a live stream: its status is all there is to check
        } else {
            let text = r.text().await.unwrap_or_default();
            assert!(
                status < 500,
                "round {round}: {method} {path} with {:?} answered {status}: {text}",
                body.map(|b| String::from_utf8_lossy(&b)
                    .chars()
                    .take(300)
                    .collect::<String>())
            );
        }
        assert!(
            status < 500,
            "round {round}: {method} {path} answered {status}"
        );
    }
    println!("answers by status: {counts:?}");
    let (status, _) = s.get("/api/v1/sweeps").await;
    assert_eq!(status, 200, "the server still serves");
}

/// Every error answer is the API's JSON error, also those of axum's own extractors: a path
/// that is not UTF-8 names what is wrong in `{"error": ...}` with the extractor's status.
#[tokio::test]
async fn an_extractors_refusal_is_a_json_error() {
    let s = start(None).await;
    for path in ["/api/v1/runs/%ff%fe", "/api/v1/sweeps/%ff/export"] {
        let (status, body) = raw(&s, Method::GET, path, &[], None).await;
        assert_eq!(status, 400, "{path}: {body}");
        let error: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains("UTF-8")),
            "{path}: {body}"
        );
    }
}

/// A project name is 1 to 256 bytes without control characters, on every store (PostgreSQL
/// cannot store a NUL, which answered a 400 that named no field).
#[tokio::test]
async fn a_project_name_is_checked_where_it_is_given() {
    let s = start(None).await;
    let long = "p".repeat(100_000);
    for project in ["a\u{0}b", "a\nb", "", long.as_str()] {
        let (status, body) = s
            .post(
                "/api/v1/sweeps",
                json!({"source": SOURCE, "project": project, "resume": true}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("project name"),
            "{body}"
        );
        let (status, body) = s.post("/api/v1/runs", json!({"project": project})).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("project name"),
            "{body}"
        );
    }
    let (status, body) = s
        .post(
            "/api/v1/sweeps",
            json!({"source": SOURCE, "project": "mnist-é"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
