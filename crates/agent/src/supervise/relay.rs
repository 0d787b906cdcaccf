//! Batching and sending: output and metric points gathered into bounded batches, posted to
//! the server with retries, and kept in the run's spill file when the server is away.

use super::*;

/// What is waiting in the sender's queue, to bound memory.
#[derive(Default)]
pub(super) struct Pending {
    bytes: AtomicUsize,
    points: AtomicUsize,
}

/// One request's worth of data.
pub(super) enum Batch {
    Output(Stream, String),
    Metrics(Vec<MetricPoint>),
}

/// Gathers chunks into batches.
pub(super) struct Relay {
    pub(super) run: String,
    pub(super) batch_tx: mpsc::UnboundedSender<Batch>,
    pub(super) pending: Arc<Pending>,
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) echo: bool,
    /// stdout, stderr.
    pub(super) buffers: [String; 2],
    pub(super) points: Vec<MetricPoint>,
    pub(super) next_step: i64,
    pub(super) dropped_bytes: usize,
    pub(super) dropped_points: usize,
    /// Points dropped over the whole run because too many were waiting.
    pub(super) total_dropped_points: u64,
    pub(super) warnings: usize,
    /// The end of stderr, at most [`STDERR_TAIL_BYTES`].
    pub(super) stderr_tail: String,
}

pub(super) fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Relay {
    /// Relay until the readers are done; returns the number of points dropped because too
    /// many were waiting, and the end of stderr.
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Chunk>,
        flush: Duration,
    ) -> (u64, String) {
        let mut tick = tokio::time::interval(flush.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(chunk) => self.accept(chunk),
                    None => break,
                },
                _ = tick.tick() => self.flush_all(),
            }
        }
        if self.dropped_bytes > 0 || self.dropped_points > 0 {
            let note = self.dropped_note();
            self.buffers[1].push_str(&note);
        }
        self.flush_all();
        (self.total_dropped_points, self.stderr_tail)
    }

    fn accept(&mut self, chunk: Chunk) {
        if self.echo {
            echo(chunk.stream, &chunk.text);
        }
        if chunk.stream == Stream::Stderr {
            keep_tail(&mut self.stderr_tail, &chunk.text, STDERR_TAIL_BYTES);
        }
        let mut text = chunk.text;
        if chunk.dropped > 0 {
            text.push_str(&format!(
                "\n[hyperdial agent] the line above was longer than 1 MiB; {} more bytes of it were dropped\n",
                chunk.dropped
            ));
        }
        match chunk.metric {
            Some(Ok(mut point)) => {
                point.time_ms = Some(chunk.time_ms);
                let step = point.step.unwrap_or(self.next_step);
                // The step travels with the point, so a batch sent twice is stored once.
                point.step = Some(step);
                self.next_step = step.saturating_add(1);
                let _ = self.events.send(Event::Metric {
                    run: self.run.clone(),
                    step,
                    values: point.values.clone(),
                });
                self.push_point(point);
            }
            Some(Err(reason)) => {
                if !text.ends_with('\n') && !text.ends_with('\r') {
                    text.push('\n');
                }
                text.push_str(&format!(
                    "[hyperdial agent] ignored the metric line above: {reason}\n"
                ));
                self.warnings += 1;
                if self.warnings <= MAX_LINE_WARNINGS {
                    let more = if self.warnings == MAX_LINE_WARNINGS {
                        " (further ones are only noted in the run's output)"
                    } else {
                        ""
                    };
                    let _ = self.events.send(Event::Message(format!(
                        "run {}: ignored a metric line: {reason}{more}",
                        self.run
                    )));
                }
            }
            None => {}
        }
        self.push_text(chunk.stream, text);
    }

    fn buffered(&self) -> usize {
        self.buffers[0].len() + self.buffers[1].len()
    }

    fn dropped_note(&mut self) -> String {
        let note = format!(
            "[hyperdial agent] the server did not keep up: {} bytes of output and {} metric points were dropped\n",
            self.dropped_bytes, self.dropped_points
        );
        self.dropped_bytes = 0;
        self.dropped_points = 0;
        note
    }

    fn push_text(&mut self, stream: Stream, text: String) {
        let waiting = self.pending.bytes.load(Ordering::Relaxed) + self.buffered();
        if waiting + text.len() > MAX_PENDING_OUTPUT {
            self.dropped_bytes += text.len();
            return;
        }
        let i = index(stream);
        if self.dropped_bytes > 0 || self.dropped_points > 0 {
            let note = self.dropped_note();
            self.buffers[i].push_str(&note);
        }
        self.buffers[i].push_str(&text);
        if self.buffers[i].len() >= OUTPUT_BATCH {
            self.flush_stream(stream);
        }
    }

    fn push_point(&mut self, point: MetricPoint) {
        let waiting = self.pending.points.load(Ordering::Relaxed) + self.points.len();
        if waiting >= MAX_PENDING_POINTS {
            self.dropped_points += 1;
            self.total_dropped_points += 1;
            return;
        }
        self.points.push(point);
        if self.points.len() >= METRICS_BATCH {
            self.flush_metrics();
        }
    }

    fn flush_stream(&mut self, stream: Stream) {
        let text = std::mem::take(&mut self.buffers[index(stream)]);
        if text.is_empty() {
            return;
        }
        self.pending.bytes.fetch_add(text.len(), Ordering::Relaxed);
        let _ = self.batch_tx.send(Batch::Output(stream, text));
    }

    fn flush_metrics(&mut self) {
        if self.points.is_empty() {
            return;
        }
        let points = std::mem::take(&mut self.points);
        self.pending
            .points
            .fetch_add(points.len(), Ordering::Relaxed);
        let _ = self.batch_tx.send(Batch::Metrics(points));
    }

    fn flush_all(&mut self) {
        self.flush_metrics();
        self.flush_stream(Stream::Stdout);
        self.flush_stream(Stream::Stderr);
    }
}

/// Append `text` to `tail`, then keep only its last `max` bytes (cut at a line start where
/// there is one, else at a character boundary).
pub(super) fn keep_tail(tail: &mut String, text: &str, max: usize) {
    tail.push_str(text);
    if tail.len() <= max {
        return;
    }
    let mut cut = tail.len() - max;
    while !tail.is_char_boundary(cut) {
        cut += 1;
    }
    if let Some(nl) = tail[cut..].find('\n') {
        if nl + 1 < tail.len() - cut {
            cut += nl + 1;
        }
    }
    tail.drain(..cut);
}

pub(super) fn echo(stream: Stream, text: &str) {
    let _ = match stream {
        Stream::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Stream::Stderr => io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// Merge consecutive batches of the same kind (and stream), within request size limits.
pub(super) fn coalesce(batches: Vec<Batch>) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for batch in batches {
        match (out.last_mut(), batch) {
            (Some(Batch::Output(s, text)), Batch::Output(s2, more))
                if *s == s2 && text.len() + more.len() <= MAX_MERGED_OUTPUT =>
            {
                text.push_str(&more);
            }
            (Some(Batch::Metrics(points)), Batch::Metrics(more))
                if points.len() + more.len() <= MAX_MERGED_POINTS =>
            {
                points.extend(more);
            }
            (_, batch) => out.push(batch),
        }
    }
    out
}

/// What the sender could not deliver.
#[derive(Debug, Default)]
pub(super) struct SendReport {
    /// Points written to the spill file.
    pub(super) spilled: u64,
    /// Points lost: refused by the server for good, or no spill file could take them.
    pub(super) dropped: u64,
    /// Whether the last request failed (the server is away).
    pub(super) failing: bool,
    /// The server refused a request because it marked the run `crashed`: nothing more is
    /// sent, and nothing is missing (the run's retry is the attempt that counts).
    pub(super) given_up: bool,
}

/// Post batches in order. Reports a stop request from a metrics answer on `stop_tx` (asking
/// a heartbeat for the reason when the answer has none).
///
/// A request is retried for the client's whole retry window. Once a request has failed that
/// long the server counts as away: later requests get one short attempt
/// ([`DEGRADED_RETRY_BUDGET`]) until one succeeds, and metric batches that fail go to `spill`
/// (output that fails is held, see [`hold_output`], and kept in `spill` if the run ends first).
pub(super) async fn send_batches(
    client: Client,
    run: String,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    pending: Arc<Pending>,
    stop_tx: mpsc::UnboundedSender<Option<String>>,
    events: mpsc::UnboundedSender<Event>,
    spill: Option<(SpillFile, String)>,
) -> SendReport {
    // The spill file, and the options of the `hyperdial sync` that uploads it.
    let (spill, sync_options) = match spill {
        Some((file, sync)) => (Some(file), sync),
        None => (None, String::new()),
    };
    let budget = client.retry_budget().min(DEGRADED_RETRY_BUDGET);
    let degraded = client.clone().with_retry_budget(budget);
    let mut report = SendReport::default();
    let mut stop_sent = false;
    // Output of each stream (stdout, stderr) the server did not take, held to go ahead of the
    // next output it takes, so the captured output keeps its order ([`hold_output`]); and the
    // lines beyond what is held, counted for the note written in their place.
    let mut held: [String; 2] = Default::default();
    let mut undelivered = [0u64; 2];
    while let Some(first) = rx.recv().await {
        let mut queued = vec![first];
        while let Ok(more) = rx.try_recv() {
            queued.push(more);
        }
        for batch in coalesce(queued) {
            if report.given_up {
                if let Batch::Output(_, text) = &batch {
                    pending.bytes.fetch_sub(text.len(), Ordering::Relaxed);
                } else if let Batch::Metrics(points) = &batch {
                    pending.points.fetch_sub(points.len(), Ordering::Relaxed);
                }
                continue;
            }
            let http = if report.failing { &degraded } else { &client };
            let result: Result<Option<bool>, (ClientError, &str)> = match &batch {
                Batch::Output(stream, text) => {
                    let i = index(*stream);
                    // What was held goes first, then the note of lines lost beyond it, then
                    // this batch: the order the process wrote them in.
                    let marked;
                    let body = if undelivered[i] > 0 || !held[i].is_empty() {
                        marked = format!("{}{}{text}", held[i], note_of(undelivered[i]));
                        marked.as_str()
                    } else {
                        text.as_str()
                    };
                    let r = http.post_output(&run, *stream, body).await;
                    pending.bytes.fetch_sub(text.len(), Ordering::Relaxed);
                    match r {
                        Ok(()) => {
                            undelivered[i] = 0;
                            held[i].clear();
                            Ok(None)
                        }
                        Err(e) => {
                            undelivered[i] += hold_output(&mut held[i], text, HELD_OUTPUT_BYTES);
                            Err((e, "output"))
                        }
                    }
                }
                Batch::Metrics(points) => {
                    let r = http.post_metrics(&run, points).await;
                    pending.points.fetch_sub(points.len(), Ordering::Relaxed);
                    match r {
                        Ok(answer) if answer.stop && !stop_sent => {
                            stop_sent = true;
                            let reason = match answer.reason {
                                Some(reason) => Some(reason),
                                None => http.heartbeat(&run).await.ok().and_then(|h| h.reason),
                            };
                            let _ = stop_tx.send(reason);
                            Ok(Some(true))
                        }
                        Ok(_) => Ok(Some(false)),
                        Err(e) if e.is_run_crashed() => Err((e, "metrics")),
                        Err(e) => {
                            keep_undelivered(
                                &run,
                                points,
                                &e,
                                spill.as_ref(),
                                &mut report,
                                &events,
                            );
                            Err((e, "metrics"))
                        }
                    }
                }
            };
            match result {
                Ok(_) => {
                    if report.failing {
                        let _ = events.send(Event::Message(format!(
                            "run {run}: the server takes output and metrics again"
                        )));
                    }
                    report.failing = false;
                }
                Err((err, _)) if err.is_run_crashed() => {
                    report.given_up = true;
                    report.failing = false;
                    if !stop_sent {
                        stop_sent = true;
                        let _ = events.send(Event::Message(given_up_message(&run, &err)));
                        let _ = stop_tx.send(Some(GIVEN_UP.to_string()));
                    }
                }
                Err((err, what)) => {
                    // Said once when the failing starts (below) and once when it ends; every
                    // batch in between would repeat it every second or two.
                    tracing::debug!("run {run}: could not send {what}: {err}");
                    if !report.failing {
                        let _ = events.send(Event::Message(sending_failed_message(
                            &run,
                            what,
                            &err,
                            http.base_url(),
                            spill.as_ref().filter(|_| err.is_kept()),
                            &sync_options,
                        )));
                    }
                    // A refused token counts as failing too: said once, and once when the
                    // server takes the run's reports again (its token accepted again).
                    report.failing = err.is_kept();
                }
            }
        }
    }
    // Output held at the end of the run (and the note of lines lost): sent if the server
    // answers now (one short try), else kept in the spill file with the run's points, for the
    // upload that ends the run (the agent's, or `hyperdial sync`).
    for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
        if (undelivered[i] == 0 && held[i].is_empty()) || report.given_up {
            continue;
        }
        let rest = format!("{}{}", held[i], note_of(undelivered[i]));
        match degraded.post_output(&run, stream, &rest).await {
            Ok(()) => {}
            Err(err) => match spill.as_ref().filter(|_| err.is_kept()) {
                Some(file) => {
                    if let Err(e) = file.append_output(stream, &rest) {
                        tracing::warn!("run {run}: cannot keep its output: {e}");
                    }
                }
                None => tracing::debug!("run {run}: could not send the output held: {err}"),
            },
        }
    }
    report
}

/// The most output of one stream held while the server is away ([`hold_output`]): 1 MiB, so a
/// run's held output stays well inside one request (`MAX_REQUEST_BYTES`).
pub(super) const HELD_OUTPUT_BYTES: usize = 1 << 20;

/// Hold `text`, output the server did not take, in `held` when it fits within `cap` bytes;
/// returns the lines that did not fit (0 when held), to be counted in the note written in
/// their place ([`undelivered_note`]).
pub(super) fn hold_output(held: &mut String, text: &str, cap: usize) -> u64 {
    if held.len() + text.len() <= cap {
        held.push_str(text);
        0
    } else {
        count_lines(text)
    }
}

/// [`undelivered_note`] for `lines` lines lost, or nothing when none was.
fn note_of(lines: u64) -> String {
    if lines > 0 {
        undelivered_note(lines)
    } else {
        String::new()
    }
}

/// The line put in a run's captured output where `lines` lines of output were lost because
/// the server did not take them.
pub(super) fn undelivered_note(lines: u64) -> String {
    let what = if lines == 1 {
        "1 output line was".to_string()
    } else {
        format!("{lines} output lines were")
    };
    format!("[hyperdial agent] {what} not delivered while the server was unreachable\n")
}

/// Lines in `text` (each ended by `\n` or `\r`, the last one possibly by nothing).
pub(super) fn count_lines(text: &str) -> u64 {
    let ends = text.bytes().filter(|b| *b == b'\n' || *b == b'\r').count() as u64;
    let open = !text.is_empty() && !text.ends_with(['\n', '\r']);
    ends + u64::from(open)
}

/// What the agent says when sending a run's `what` (`metrics`, `output`) to the server at
/// `server` starts failing with `err`: the server (its URL, a password in it hidden),
/// where the metric points go meanwhile (`spill`, when the failure may pass) and how they
/// reach the run later (`hyperdial sync` with `sync_options`).
pub(super) fn sending_failed_message(
    run: &str,
    what: &str,
    err: &ClientError,
    server: &str,
    spill: Option<&SpillFile>,
    sync_options: &str,
) -> String {
    let server = hyperdial_wire::redact_url(server);
    if err.is_auth() {
        return auth_refused_message(run, err, &server, spill, sync_options);
    }
    let fate = match spill {
        Some(file) => format!(
            "its metric points are kept in {} meanwhile; the agent uploads them when the run \
             ends if the server answers by then, else `{}` uploads \
             them to the run once it does (new points go to the server again as soon as it \
             answers; output is held, up to 1 MiB a stream, and sent in order then)",
            file.label(),
            sync_command(file.path().parent(), sync_options)
        ),
        None if err.is_transient() => {
            "its metric points and output are dropped until the server answers again".to_string()
        }
        None => "they are dropped".to_string(),
    };
    let why = if err.is_unknown() {
        format!(
            " (it does not know this run: {})",
            crate::client::UNKNOWN_RUN_CAUSE
        )
    } else {
        String::new()
    };
    format!(
        "run {run}: could not send {what} to the hyperdial server at {server} ({err}){why}; \
         {fate}"
    )
}

/// What the agent says when the server refused its token (`401`, `403`) for a run's reports:
/// a token problem, not an outage; where the metric points are kept and how to fix it (a
/// token the server accepts, then `hyperdial sync`).
pub(super) fn auth_refused_message(
    run: &str,
    err: &ClientError,
    server: &str,
    spill: Option<&SpillFile>,
    sync_options: &str,
) -> String {
    let status = err.status().unwrap_or(401);
    let fix = "set HYPERDIAL_TOKEN (or --token) to a token the server accepts";
    match spill {
        Some(file) => format!(
            "run {run}: the hyperdial server at {server} refused this agent's token \
             ({status}): its metric points, output and end are kept in {}; \
             {fix}, then upload them with `{}`",
            file.label(),
            sync_command(file.path().parent(), sync_options)
        ),
        None => format!(
            "run {run}: the hyperdial server at {server} refused this agent's token ({status}); \
             its metric points and output are lost (no spill directory); {fix}"
        ),
    }
}

/// A metrics batch could not be sent: write it to the spill file when the failure may pass
/// or the token was refused (or count it dropped when it cannot, or there is no spill file).
pub(super) fn keep_undelivered(
    run: &str,
    points: &[MetricPoint],
    err: &ClientError,
    spill: Option<&SpillFile>,
    report: &mut SendReport,
    events: &mpsc::UnboundedSender<Event>,
) {
    let count = points.len() as u64;
    match spill.filter(|_| err.is_kept()) {
        Some(file) => match file.append(points) {
            Ok(()) => report.spilled += count,
            Err(e) => {
                report.dropped += count;
                let _ = events.send(Event::Message(format!(
                    "run {run}: {count} metric points are lost: cannot write the spill file: {e}"
                )));
            }
        },
        None => {
            report.dropped += count;
            if !err.is_kept() {
                let _ = events.send(Event::Message(format!(
                    "run {run}: the server refused {count} metric points: {err}"
                )));
            }
        }
    }
}
