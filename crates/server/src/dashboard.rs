//! A plain HTML overview served at `/`: sweeps, their runs, and each run's details and output.
//! Server-rendered, no JavaScript; every value is HTML-escaped.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyperdial_store::RunFilter;
use serde_json::Value;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/sweeps/{id}", get(sweep_page))
        .route("/runs/{id}", get(run_page))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{t} · hyperdial</title>\
         <meta http-equiv=refresh content=5><style>body{{font:14px system-ui,sans-serif;margin:2em}}\
         table{{border-collapse:collapse}}td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}}\
         pre{{background:#f6f6f6;padding:1em;overflow:auto;max-height:40em}}</style></head>\
         <body><p><a href=\"/\">hyperdial</a></p><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    ))
    .into_response()
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_else(|| "—".into())
}

fn cell(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => esc(s),
        Some(v) => esc(&v.to_string()),
        None => String::new(),
    }
}

async fn index(State(s): State<AppState>) -> Response {
    let store = s.controller.store();
    let Ok(sweeps) = store.sweeps(None).await else {
        return page("Error", "<p>storage failed</p>");
    };
    let mut rows = String::new();
    for sw in &sweeps {
        let counts = store.sweep_counts(&sw.id).await.unwrap_or_default();
        let best = store
            .best_run(&sw.id, sw.goal.as_deref() == Some("maximize"))
            .await
            .ok()
            .flatten();
        rows.push_str(&format!(
            "<tr><td><a href=\"/sweeps/{id}\">{id}</a></td><td>{name}</td><td>{project}</td><td>{method}</td><td>{state}</td>\
             <td>{runs}</td><td>{metric}</td><td>{best}</td></tr>",
            id = esc(&sw.id),
            name = esc(sw.name.as_deref().unwrap_or("")),
            project = esc(&sw.project),
            method = esc(&sw.method),
            state = esc(&sw.state),
            runs = counts.values().sum::<i64>(),
            metric = esc(sw.metric_name.as_deref().unwrap_or("")),
            best = fmt(best.and_then(|b| b.metric)),
        ));
    }
    page(
        "Sweeps",
        &format!("<table><tr><th>id</th><th>name</th><th>project</th><th>method</th><th>state</th><th>runs</th><th>metric</th><th>best</th></tr>{rows}</table>"),
    )
}

async fn sweep_page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let store = s.controller.store();
    let Ok(Some(sw)) = store.sweep(&id).await else {
        return page("Not found", &format!("<p>no sweep {}</p>", esc(&id)));
    };
    let filter = RunFilter {
        sweep: Some(id.clone()),
        limit: Some(1000),
        ..Default::default()
    };
    let (runs, total) = store.runs(&filter).await.unwrap_or_default();
    let params: Vec<String> = s
        .controller
        .config(&sw)
        .map(|c| c.parameters.iter().map(|p| p.name.clone()).collect())
        .unwrap_or_default();
    let head: String = params
        .iter()
        .map(|p| format!("<th>{}</th>", esc(p)))
        .collect();
    let mut rows = String::new();
    for r in &runs {
        let cells: String = params
            .iter()
            .map(|p| format!("<td>{}</td>", cell(r.params.get(p))))
            .collect();
        rows.push_str(&format!(
            "<tr><td><a href=\"/runs/{id}\">{n}</a></td><td>{state}</td><td>{metric}</td>{cells}</tr>",
            id = esc(&r.id),
            n = r.number.unwrap_or(0),
            state = esc(&r.state),
            metric = fmt(r.metric),
        ));
    }
    let title = format!("Sweep {} {}", sw.id, sw.name.as_deref().unwrap_or(""));
    page(
        &title,
        &format!(
            "<p>state <b>{state}</b> · method {method} · metric {metric} ({goal}) · {total} runs</p>\
             <table><tr><th>run</th><th>state</th><th>metric</th>{head}</tr>{rows}</table>\
             <h2>Config</h2><pre>{source}</pre>",
            state = esc(&sw.state),
            method = esc(&sw.method),
            metric = esc(sw.metric_name.as_deref().unwrap_or("—")),
            goal = esc(sw.goal.as_deref().unwrap_or("")),
            source = esc(&sw.source),
        ),
    )
}

async fn run_page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let store = s.controller.store();
    let Ok(Some(r)) = store.run(&id).await else {
        return page("Not found", &format!("<p>no run {}</p>", esc(&id)));
    };
    let output = store.output(&id).await.unwrap_or_default();
    let pretty = |v: &Value| esc(&serde_json::to_string_pretty(v).unwrap_or_default());
    page(
        &format!("Run {}", r.id),
        &format!(
            "<p>state <b>{state}</b> · exit code {code} · host {host} · metric {metric}{error}</p>\
             <h2>Config</h2><pre>{config}</pre><h2>Summary</h2><pre>{summary}</pre>\
             <h2>Command</h2><pre>{argv}</pre><h2>Output</h2><pre>{output}</pre>",
            state = esc(&r.state),
            code = r
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "—".into()),
            host = esc(r.host.as_deref().unwrap_or("—")),
            metric = fmt(r.metric),
            error = r
                .error
                .as_deref()
                .map(|e| format!(" · {}", esc(e)))
                .unwrap_or_default(),
            config = pretty(&r.config),
            summary = pretty(&Value::Object(r.summary.clone())),
            argv = pretty(&r.argv),
            output = esc(&output),
        ),
    )
}
