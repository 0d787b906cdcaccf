//! A multi-objective sweep over HTTP, on SQLite and, when `HYPERDIAL_TEST_PG` is set, on
//! PostgreSQL (otherwise it reports SKIPPED): `tpe` leaves its Sobol start once runs carry
//! both objectives (the controller fills them in from the summaries), the front route
//! answers the non-dominated layers of the ended runs, the sweep has no single best run, and
//! an unknown sweep is a `404`.

use hyperdial_server::{serve, Options};
use hyperdial_store::testing::TestDb;
use serde_json::{json, Value};

struct Http {
    base: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Http {
    async fn start(db: &TestDb) -> Http {
        let store = db.open().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            serve(listener, store, Options::default(), async {
                rx.await.ok();
            })
            .await
            .unwrap();
        });
        Http {
            base,
            http: reqwest::Client::new(),
            _stop: tx,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
}

/// The objectives of a run at `x`: `a` falls and `b` rises with `x` (every such run is on
/// the front), except that `x` in the middle third is dominated by a fixed penalty on `b`.
fn objectives(x: f64) -> (f64, f64) {
    let penalty = if (0.4..0.6).contains(&x) { 5.0 } else { 0.0 };
    (1.0 - x, x + penalty)
}

async fn front_of_a_tpe_sweep(db: TestDb) {
    let s = Http::start(&db).await;
    let source = "program: t.py\nmethod: tpe\nrun_cap: 14\nmetrics:\n  - {name: a}\n  - {name: b, goal: minimize}\nparameters:\n  x: {min: 0.0, max: 1.0}\n";
    let (status, sweep) = s
        .post("/api/v1/sweeps", json!({"source": source, "seed": 11}))
        .await;
    assert_eq!(status, 201, "{sweep}");
    let id = sweep["id"].as_str().unwrap().to_string();
    let mut told = Vec::new();
    let mut last_suggestion = Value::Null;
    for i in 0..14 {
        let (status, claimed) = s
            .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
            .await;
        assert_eq!(status, 200, "claim {i}: {claimed}");
        let run = &claimed["run"];
        let rid = run["id"].as_str().unwrap().to_string();
        let x = run["params"]["x"].as_f64().unwrap();
        let (a, b) = objectives(x);
        // The last run fails: it is not on any layer.
        let failed = i == 13;
        let (st, _) = s
            .post(
                &format!("/api/v1/runs/{rid}/metrics"),
                json!({"points": [{"values": {"a": a, "b": b}}]}),
            )
            .await;
        assert_eq!(st, 200);
        let (st, _) = s
            .post(
                &format!("/api/v1/runs/{rid}/finish"),
                json!({"exit_code": if failed { 1 } else { 0 }}),
            )
            .await;
        assert_eq!(st, 200);
        if !failed {
            told.push((run["number"].as_u64().unwrap(), rid, a, b));
        }
        last_suggestion = run["suggestion"].clone();
    }
    // The controller gave the strategy both objectives of every ended run: at the last claim,
    // past its Sobol start, tpe modelled the 13 runs that had finished.
    assert_eq!(
        last_suggestion["diagnostics"]["phase"], "model",
        "{last_suggestion}"
    );
    assert_eq!(last_suggestion["diagnostics"]["observations"], 13);

    let (status, front) = s.get(&format!("/api/v1/sweeps/{id}/front")).await;
    assert_eq!(status, 200, "{front}");
    assert_eq!(
        front["objectives"],
        json!([{"name": "a", "goal": "minimize"}, {"name": "b", "goal": "minimize"}])
    );
    let runs = front["runs"].as_array().unwrap();
    assert_eq!(runs.len(), told.len());
    for (number, rid, a, b) in &told {
        let r = runs.iter().find(|r| r["run_id"] == rid.as_str()).unwrap();
        assert_eq!(r["number"], *number);
        assert_eq!(r["values"], json!([a, b]));
        let dominated = told
            .iter()
            .any(|o| o.2 <= *a && o.3 <= *b && (o.2 < *a || o.3 < *b));
        assert_eq!(r["rank"] == 0, !dominated, "{r}");
    }
    let ranks: Vec<u64> = runs.iter().map(|r| r["rank"].as_u64().unwrap()).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");

    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert!(sweep["best"].is_null(), "{sweep}");
    assert_eq!(sweep["metric"]["name"], "a");
    let (status, body) = s.get(&format!("/api/v1/sweeps/{id}/best")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("/front"), "{body}");
    let (status, _) = s.get("/api/v1/sweeps/nope/front").await;
    assert_eq!(status, 404);
    drop(s);
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_front_of_a_multi_objective_tpe_sweep() {
    front_of_a_tpe_sweep(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_front_of_a_multi_objective_tpe_sweep() {
    if let Some(db) = TestDb::postgres("server postgres_front_of_a_multi_objective_tpe_sweep").await
    {
        front_of_a_tpe_sweep(db).await;
    }
}
