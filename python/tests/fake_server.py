"""A threaded fake of the hyperdial server's run endpoints, recording every request.

It implements what the Python client uses (docs/api.md): GET /api/v1/sweeps, POST /api/v1/runs,
POST /api/v1/runs/{id}/metrics, PUT /api/v1/runs/{id}/summary, PUT /api/v1/runs/{id}/config,
POST /api/v1/runs/{id}/heartbeat, POST /api/v1/runs/{id}/delivery and POST /api/v1/runs/{id}/finish; and for the ask/tell API POST /api/v1/sweeps,
GET /api/v1/sweeps/{id}, POST /api/v1/sweeps/{id}/claim and GET /api/v1/sweeps/{id}/best
(a sweep hands out runs whose parameter "x" is 0.1 * number until ``sweep_cap`` runs exist).
"""

import http.server
import json
import socket
import threading
import time
import urllib.parse


class Request:
    """One recorded request."""

    def __init__(self, method, path, query, headers, body, size=0):
        self.size = size  # bytes of the body
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.status = None

    def __repr__(self):
        return "<%s %s %r>" % (self.method, self.path, self.body)


class FakeServer:
    """Start with start(), stop with stop(); requests are in .requests (thread-safe)."""

    def __init__(self, token=None, run_id="r7mz0c1d", tls=None):
        self.token = token
        self.tls = tls  # an ssl.SSLContext for the server side: serve HTTPS
        self.run_id = run_id
        self.requests = []
        self.lock = threading.Lock()
        self.stop_runs = False  # answer "stop": true to metrics and heartbeats
        self.fail_status = None  # answer every run request with this status
        self.probe_fail = []  # answer the next GET /api/v1/sweeps with these statuses
        self.create_fail = []  # answer the next POST /api/v1/runs with these statuses
        self.fail_next = []  # statuses answered to the next run requests first (e.g. [503, 429])
        self.max_body = None  # bodies larger than this many bytes answer 413
        self.heartbeat_status = 200  # answer heartbeats with this status
        self.sweeps = {}  # sweep id -> sweep object
        self.sweep_runs = {}  # run id -> run object, for runs handed out by claims
        self.sweep_cap = 1000  # claims beyond this many runs of a sweep answer 410
        self.claim_statuses = []  # statuses answered to the next claims first (e.g. [204])
        self.claim_long_poll = False  # a 204 to a claim with wait_ms says the server waited
        self._httpd = None
        self._thread = None

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return "%s://%s:%d" % ("https" if self.tls else "http", host, port)

    def start(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw.decode("utf-8")) if raw else None
                req = Request(self.command, parsed.path, urllib.parse.parse_qs(parsed.query),
                              dict(self.headers), body, len(raw))
                with fake.lock:
                    fake.requests.append(req)
                status, answer = fake.answer(req)
                req.status = status
                # A 204 has no body (HTTP/1.1): one would corrupt a kept-alive connection.
                data = b"" if status == 204 else json.dumps(answer).encode("utf-8")
                self.send_response(status)
                for name, value in getattr(req, "headers_out", {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def answer(self, req):
        if self.token and req.headers.get("Authorization") != "Bearer " + self.token:
            return 401, {"error": "missing or wrong token"}
        parts = req.path.strip("/").split("/")
        if req.path == "/api/v1/sweeps" and req.method == "GET":
            with self.lock:
                failing = self.probe_fail.pop(0) if self.probe_fail else None
            if failing:
                return failing, {"error": "failing on purpose"}
            return 200, {"sweeps": []}
        if parts[:3] == ["api", "v1", "sweeps"] and len(parts) >= 3:
            answer = self.answer_sweep(req, parts[3:])
            if answer is not None:
                return answer
        if req.path == "/api/v1/runs" and req.method == "POST":
            with self.lock:
                failing = self.create_fail.pop(0) if self.create_fail else None
            if failing:
                return failing, {"error": "failing on purpose"}
            body = req.body or {}
            return 201, {"id": self.run_id, "sweep": None, "project": body.get("project"),
                         "state": "running", "config": body.get("config")}
        if len(parts) == 5 and parts[:3] == ["api", "v1", "runs"]:
            if self.fail_status:
                return self.fail_status, {"error": "failing on purpose"}
            with self.lock:
                failing = self.fail_next.pop(0) if self.fail_next else None
            if failing:
                return failing, {"error": "failing on purpose"}
            if self.max_body is not None and req.size > self.max_body:
                return 413, {"error": "the request body is larger than the limit of %d bytes"
                                      % self.max_body, "limit_bytes": self.max_body}
            action = parts[4]
            if action == "delivery" and req.method == "POST":
                return 200, {"id": parts[3], "delivery": req.body}
            if action == "metrics" and req.method == "POST":
                return 200, {"accepted": len(req.body["points"]), "stop": self.stop_runs}
            if action == "summary" and req.method == "PUT":
                return 200, {}
            if action in ("config", "name") and req.method == "PUT":
                return 200, {}
            if action == "heartbeat" and req.method == "POST":
                if self.heartbeat_status != 200:
                    return self.heartbeat_status, {"error": "no heartbeats here"}
                return 200, {"stop": self.stop_runs}
            if action == "finish" and req.method == "POST":
                state = (req.body or {}).get("state") or "finished"
                with self.lock:
                    run = self.sweep_runs.get(parts[3])
                    if run is not None:
                        run["state"] = state
                        # As the server: the run, its metric the best value it reported or
                        # was told.
                        run["metric"] = self.run_metric(run, (req.body or {}).get("values"))
                        return 200, dict(run)
                return 200, {"id": parts[3], "state": state}
        return 404, {"error": "no such endpoint: %s %s" % (req.method, req.path)}

    def answer_sweep(self, req, rest):
        """The sweep endpoints of the ask/tell API; None for anything else."""
        if not rest and req.method == "POST":
            source = (req.body or {}).get("source") or ""
            if isinstance((req.body or {}).get("config"), dict):  # a config given as data
                source = json.dumps(req.body["config"], indent=2)
            if "invalid" in source:
                return 422, {"error": "invalid sweep config: parameters.x: `min` must be "
                                      "below `max`",
                             "diagnostics": [{"path": "parameters.x",
                                              "message": "`min` must be below `max`"}]}
            metric = {"name": "loss", "goal": "minimize"}
            config = {}
            try:
                parsed = json.loads(source)
                metric = parsed.get("metric", metric)
                # As the server: the first of several objectives is the metric.
                if len(parsed.get("metrics") or []) > 1:
                    metric = parsed["metrics"][0]
                    config["metrics"] = parsed["metrics"]
            except ValueError:
                pass
            config["metric"] = metric
            with self.lock:
                sid = "sw%06d" % (len(self.sweeps) + 1)
                sweep = {"id": sid, "project": (req.body or {}).get("project") or "default",
                         "state": "running", "method": "bayes", "source": source,
                         "seed": (req.body or {}).get("seed") or 7, "metric": metric,
                         "config": config}
                self.sweeps[sid] = sweep
            return 201, sweep
        if not rest:
            return None
        sweep = self.sweeps.get(rest[0])
        if sweep is None:
            return 404, {"error": "no sweep %s" % rest[0]}
        if len(rest) == 1 and req.method == "GET":
            return 200, sweep
        if rest[1:] == ["claim"] and req.method == "POST":
            tell = (req.body or {}).get("tell")
            with self.lock:
                if tell:  # the finish travels with the claim: applied first
                    told = self.sweep_runs.get(tell["run"])
                    if told is None or told["sweep"] != sweep["id"]:
                        return 400, {"error": "run %s is not a run of sweep %s"
                                              % (tell["run"], sweep["id"])}
                    told["state"] = (tell.get("finish") or {}).get("state") or "finished"
                if self.claim_statuses:
                    status = self.claim_statuses.pop(0)
                    if status == 410:
                        return 410, {"error": "the sweep is finished", "state": "finished"}
                    wait_ms = (req.body or {}).get("wait_ms")
                    if status == 204 and self.claim_long_poll and wait_ms:
                        req.headers_out = {"X-Hyperdial-Waited-Ms": str(wait_ms)}
                    return status, None
                runs = [r for r in self.sweep_runs.values() if r["sweep"] == sweep["id"]]
                if len(runs) >= self.sweep_cap:
                    sweep["state"] = "finished"
                    return 410, {"error": "the sweep is finished", "state": "finished"}
                number = len(runs) + 1
                rid = "%s-r%d" % (sweep["id"], number)
                x = round(0.1 * number, 6)
                run = {"id": rid, "sweep": sweep["id"], "number": number, "state": "running",
                       "params": {"x": x, "opt.lr": 0.01, "opt.kind": "adam"},
                       "config": {"x": x, "opt": {"lr": 0.01, "kind": "adam"}},
                       "suggestion": {"strategy": "bayes", "seed": number},
                       "metric": None, "stop_requested": False}
                self.sweep_runs[rid] = run
            return 200, {"run": dict(run)}
        if rest[1:] == ["best"] and req.method == "GET":
            name = sweep["metric"]["name"]
            best = None
            told = [(r.path.split("/")[4], [{"values": r.body["values"]}])
                    for r in self.of("POST", "/finish") if (r.body or {}).get("values")]
            told += [(r.body["tell"]["run"], [{"values": r.body["tell"]["finish"]["values"]}])
                     for r in self.of("POST", "/claim")
                     if ((r.body or {}).get("tell") or {}).get("finish", {}).get("values")]
            told += [(r.path.split("/")[4], r.body["points"])
                     for r in self.of("POST", "/metrics")]
            for run_id, points in told:
                run = self.sweep_runs.get(run_id)
                if run is None or run["sweep"] != sweep["id"]:
                    continue
                for point in points:
                    v = point["values"].get(name)
                    if v is not None and (best is None or v < best[1]):
                        best = (run, v)
            if best is None:
                return 404, {"error": "no run has the metric yet"}
            run = dict(best[0], metric=best[1])
            return 200, {"run": run}
        return None

    def run_metric(self, run, told):
        """The best finite value of a sweep run's metric among its reports (the recorded
        metric batches) and ``told`` (the values of its finish), by the sweep's goal."""
        sweep = self.sweeps[run["sweep"]]
        name, goal = sweep["metric"]["name"], sweep["metric"].get("goal")
        values = [p["values"].get(name) for r in self.requests
                  if r.method == "POST" and r.path.endswith("/runs/%s/metrics" % run["id"])
                  for p in r.body["points"]]
        values.append((told or {}).get(name))
        values = [v for v in values if isinstance(v, (int, float))]
        if not values:
            return None
        return max(values) if goal == "maximize" else min(values)

    # helpers for assertions

    def of(self, method, suffix):
        """Recorded requests with this method whose path ends with suffix."""
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def points(self):
        """Every metric point accepted (answered 200), in arrival order."""
        return [p for r in self.of("POST", "/metrics") if r.status == 200
                for p in r.body["points"]]

    def wait_for(self, predicate, timeout=5.0):
        """Wait until predicate() is true; return its last value."""
        return wait_for(predicate, timeout)


def wait_for(predicate, timeout=5.0):
    """Wait until predicate() is true, at most timeout seconds; return its last value."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.02)


def closed_port_url():
    """A loopback URL where nothing listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:%d" % port
