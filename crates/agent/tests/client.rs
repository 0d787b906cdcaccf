//! The API client against the mock server: answers, retries, errors, authentication.

mod common;

use std::time::{Duration, Instant};

use common::{Mock, MockState};
use hyperdial_agent::{
    Claim, Client, ClientError, Finish, MetricPoint, NewRun, Stream, SweepState,
};
use hyperdial_wire::api::GitInfo;
use serde_json::{json, Map};

fn sweep_mock() -> MockState {
    common::sweep_state(
        "method: grid\nparameters:\n  a: {values: [1]}\n",
        vec![json!({"a": 1})],
    )
}

#[tokio::test]
async fn the_run_life_cycle() {
    let mock = Mock::start(MockState {
        waits: 1,
        ..sweep_mock()
    })
    .await;
    let client = Client::new(&mock.url, None);
    let sweep = client.get_sweep("sw1").await.unwrap();
    assert_eq!(
        sweep["source"].as_str().unwrap().lines().next(),
        Some("method: grid")
    );
    let agent = client.register_agent("sw1", "box", 42).await.unwrap();
    assert_eq!(agent, "a1");
    assert_eq!(
        mock.lock().agents[0],
        json!({"sweep": "sw1", "host": "box", "pid": 42,
               "process": hyperdial_procid::process_key_of(42)})
    );

    assert_eq!(client.claim("sw1", &agent).await.unwrap(), Claim::Wait);
    mock.lock().waits = 2;
    mock.lock().long_poll = true;
    // A server with the long poll says it waited, but only for a claim that asked it to.
    assert_eq!(
        client
            .claim_waiting("sw1", &agent, Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Waited
    );
    assert_eq!(client.claim("sw1", &agent).await.unwrap(), Claim::Wait);
    // The wait asked is capped at the server's limit; a plain claim asks for none.
    assert_eq!(mock.lock().claim_waits[1..], [Some(30_000), None]);
    let Claim::Run(run) = client.claim("sw1", &agent).await.unwrap() else {
        panic!("expected a run");
    };
    assert_eq!(run["id"], "r1");
    assert_eq!(run["params"], json!({"a": 1}));
    assert_eq!(
        client.claim("sw1", &agent).await.unwrap(),
        Claim::Over {
            state: SweepState::Finished
        }
    );

    let hb = client.heartbeat("r1").await.unwrap();
    assert!(!hb.stop);
    let mut values = Map::new();
    values.insert("val_loss".into(), json!(0.5));
    let point = MetricPoint {
        step: Some(3),
        time_ms: None,
        values,
    };
    let answer = client.post_metrics("r1", &[point]).await.unwrap();
    assert!(!answer.stop);
    client
        .post_output("r1", Stream::Stderr, "warn\n")
        .await
        .unwrap();
    client.put_summary("r1", json!({"best": 1})).await.unwrap();
    let run = client
        .finish(
            "r1",
            &Finish {
                exit_code: Some(0),
                ..Finish::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(run["state"], "finished");
    assert_eq!(run["metric"], 0.5);
    let rec = mock.run("r1");
    assert_eq!(
        rec.points,
        [json!({"step": 3, "values": {"val_loss": 0.5}})]
    );
    assert_eq!(rec.output, [("stderr".to_string(), "warn\n".to_string())]);
    assert_eq!(rec.run["summary"], json!({"best": 1}));

    // Finishing twice: the 409's message comes through.
    let err = client.finish("r1", &Finish::default()).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.to_string().ends_with("409: the run has already ended"));
}

#[tokio::test]
async fn create_run_outside_a_sweep() {
    let mock = Mock::start(MockState::default()).await;
    let client = Client::new(&mock.url, None);
    let run = client
        .create_run(&NewRun {
            project: Some("p".into()),
            argv: Some(vec!["python3".into(), "train.py".into()]),
            git: Some(GitInfo {
                commit: Some("abc".into()),
                dirty: Some(false),
            }),
            ..NewRun::default()
        })
        .await
        .unwrap();
    assert_eq!(run["state"], "running");
    assert_eq!(run["git"], json!({"commit": "abc", "dirty": false}));
    assert_eq!(run["argv"], json!(["python3", "train.py"]));
}

#[tokio::test]
async fn server_errors_are_retried() {
    let mock = Mock::start(MockState {
        fail_next: 3,
        ..sweep_mock()
    })
    .await;
    let client = Client::new(&mock.url, None);
    let started = Instant::now();
    let sweep = client.get_sweep("sw1").await.unwrap();
    assert_eq!(sweep["id"], "sw1");
    // 100 + 200 + 400 ms of backoff.
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!(mock.lock().requests.len(), 4);

    // With a budget too short for the retries, the last 5xx is the error.
    mock.lock().fail_next = 100;
    let client = client.with_retry_budget(Duration::from_millis(250));
    let err = client.get_sweep("sw1").await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(
        err.to_string().ends_with("500: database is locked"),
        "{err}"
    );
}

#[tokio::test]
async fn a_claim_sends_one_key_on_each_of_its_retries_and_a_new_one_for_the_next_claim() {
    let mock = Mock::start(MockState {
        fail_next: 2,
        ..sweep_mock()
    })
    .await;
    let client = Client::new(&mock.url, None);
    let Claim::Run(_) = client.claim("sw1", "a1").await.unwrap() else {
        panic!("expected a run");
    };
    client.claim("sw1", "a1").await.unwrap();
    let keys = mock.lock().claim_keys.clone();
    assert_eq!(keys.len(), 4, "{keys:?}");
    let first = keys[0].clone().expect("a claim key");
    // The server may have stored the first attempts' claim: every retry names it.
    assert_eq!(
        keys[..3],
        [
            Some(first.clone()),
            Some(first.clone()),
            Some(first.clone())
        ]
    );
    let next = keys[3].clone().expect("a claim key");
    assert_ne!(next, first);
    // Within the server's bounds: lowercase letters and digits, at most the longest key.
    for key in [first, next] {
        assert!(
            key.len() <= hyperdial_wire::api::MAX_CLAIM_KEY_CHARS,
            "{key}"
        );
        assert!(
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{key}"
        );
    }
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let mock = Mock::start(sweep_mock()).await;
    let client = Client::new(&mock.url, None);
    let started = Instant::now();
    let err = client.get_sweep("nope").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(
        err,
        ClientError::Status {
            method: "GET".into(),
            path: "/api/v1/sweeps/nope".into(),
            status: 404,
            message: "no sweep nope".into(),
            code: None,
        }
    );
    assert_eq!(mock.lock().requests.len(), 1);
}

#[tokio::test]
async fn bearer_token() {
    let mock = Mock::start(MockState {
        token: Some("s3cret".into()),
        ..sweep_mock()
    })
    .await;
    let err = Client::new(&mock.url, None)
        .get_sweep("sw1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.to_string().contains("missing or wrong API token"));
    let ok = Client::new(&mock.url, Some("s3cret".into()))
        .get_sweep("sw1")
        .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn unreachable_server_gives_up_after_the_budget() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::new(&url, None).with_retry_budget(Duration::from_millis(400));
    let started = Instant::now();
    let err = client.heartbeat("r1").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    match &err {
        ClientError::Unreachable { url: u, .. } => assert_eq!(u, &url),
        other => panic!("{other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with(&format!("cannot reach the hyperdial server at {url}: ")));
    // The whole budget is spent retrying (the last pause is cut to end with it), so the
    // message's "retrying for N s" is the budget, not the time before the last full pause.
    let client = Client::new(&url, None).with_retry_budget(Duration::from_secs(3));
    let started = Instant::now();
    let err = client.heartbeat("r1").await.unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().contains("gave up after retrying for 3 s"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_answers_are_errors_not_panics() {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route("/api/v1/sweeps/{id}", get(|| async { "not json" }))
        .route(
            "/api/v1/sweeps/{id}/claim",
            post(|| async { axum::Json(json!({"nope": 1})) }),
        )
        .route(
            "/api/v1/agents",
            post(|| async { axum::Json(json!({"id": 5})) }),
        )
        .route(
            "/api/v1/runs/{id}/heartbeat",
            post(|| async { axum::Json(json!({"stop": "yes"})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::new(&url, None);
    let err = client.get_sweep("x").await.unwrap_err();
    assert!(matches!(err, ClientError::BadAnswer { .. }), "{err:?}");
    assert!(err.to_string().contains("invalid JSON"));
    let err = client.claim("x", "a").await.unwrap_err();
    assert!(err.to_string().contains("no `run` object"));
    let err = client.register_agent("x", "h", 1).await.unwrap_err();
    assert!(err.to_string().contains("no agent `id`"));
    // A heartbeat answer without a usable `stop` means: go on.
    assert!(!client.heartbeat("r").await.unwrap().stop);
}

#[tokio::test]
async fn a_client_given_two_servers_goes_on_with_the_second_when_the_first_cannot_be_reached() {
    let mock = Mock::start(sweep_mock()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::new(&format!("{dead}, {}/", mock.url), None)
        .with_retry_budget(Duration::from_secs(30));
    assert_eq!(client.base_urls(), [dead.clone(), mock.url.clone()]);
    assert_eq!(client.base_url(), dead);
    let sweep = client.get_sweep("sw1").await.unwrap();
    assert_eq!(sweep["id"], "sw1");
    // The switch holds for later requests and for clones.
    assert_eq!(client.clone().base_url(), mock.url);
    client.heartbeat("r1").await.unwrap();
}

#[tokio::test]
async fn a_hurried_client_stops_retrying_at_its_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::new(&url, None).with_retry_budget(Duration::from_secs(600));
    let clone = client.clone();
    let pending = tokio::spawn(async move { clone.heartbeat("r1").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.hurry(Duration::from_millis(200));
    // Well before the 600 s retry window.
    let err = tokio::time::timeout(Duration::from_secs(60), pending)
        .await
        .expect("the request ended at the deadline")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::ShuttingDown { url: u } if u == &url),
        "{err:?}"
    );
    assert!(err.is_transient());
    // After the deadline a request fails at once, without trying.
    let err = client.finish("r1", &Finish::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::ShuttingDown { .. }), "{err:?}");
}
