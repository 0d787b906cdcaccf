"""Code shared by test_stopping.py and test_metric.py: W&B's `sweeps` library (or the reason
it is missing), the hyperdial binary, its hidden `debug` views and a real `hyperdial server`.

The binary is `$HYPERDIAL` if set, else `target/debug/hyperdial` (or under
`$CARGO_TARGET_DIR`), built with cargo when it is not there yet.
"""

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# W&B's library, pinned in python/requirements-test.txt. pydantic warns about its old-style
# config on import; that is noise here.
SWEEPS_MISSING = None
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sweeps  # noqa: F401
        from sweeps import bayes_search, hyperband_stopping  # noqa: F401
        from sweeps.run import RunState, SweepRun  # noqa: F401

    if getattr(sweeps, "__version__", "0.3.0") != "0.3.0":
        SWEEPS_MISSING = "sweeps %s installed; the suite is pinned to 0.3.0" % sweeps.__version__
except ImportError as err:
    SWEEPS_MISSING = "the W&B library sweeps==0.3.0 is not installed (%s); pip install -r python/requirements-test.txt" % err

if SWEEPS_MISSING:
    print("SKIPPED: " + SWEEPS_MISSING, file=sys.stderr)

_BINARY = None


def binary():
    """Path of the hyperdial binary, building it once if needed."""
    global _BINARY
    if _BINARY:
        return _BINARY
    path = os.environ.get("HYPERDIAL")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        path = os.path.join(target, "debug", "hyperdial")
        if not os.path.exists(path):
            subprocess.run(["cargo", "build", "-q", "-p", "hyperdial-cli"], cwd=ROOT, check=True)
    _BINARY = path
    return path


def finite_or_none(v):
    """JSON for a metric value: NaN and infinities become null (as every client sends them)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def debug_raw(view, config, runs):
    """Run `hyperdial debug VIEW` on a sweep config (a dict) and runs; the finished process."""
    payload = json.dumps({"config": json.dumps(config), "runs": runs}, allow_nan=False)
    return subprocess.run([binary(), "debug", view], input=payload, capture_output=True, text=True)


def debug(view, config, runs):
    """Run `hyperdial debug VIEW` on a sweep config (a dict) and runs; returns its JSON."""
    done = debug_raw(view, config, runs)
    if done.returncode != 0:
        payload = json.dumps({"config": config, "runs": runs})
        raise AssertionError("hyperdial debug %s failed: %s\ninput: %s" % (view, done.stderr, payload))
    return json.loads(done.stdout)


# W&B run states and the hyperdial state each one is.
STATES = {
    "running": "running",
    "finished": "finished",
    "failed": "failed",
    "crashed": "crashed",
    "killed": "cancelled",
    "pending": "queued",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real `hyperdial server` on a temporary database, stopped by `close()`."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="hyperdial-conformance-")
        port = free_port()
        self.url = "http://127.0.0.1:%d/api/v1" % port
        self.proc = subprocess.Popen(
            [binary(), "server", "--db", os.path.join(self.dir.name, "db.sqlite"),
             "--bind", "127.0.0.1:%d" % port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Wait until it answers (a readiness check, not a measured timing).
        for _ in range(600):
            try:
                self.call("GET", "/sweeps")
                return
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None:
                    raise AssertionError("hyperdial server exited with %s" % self.proc.returncode)
                time.sleep(0.05)
        self.close()
        raise AssertionError("hyperdial server did not answer")

    def call(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body, allow_nan=False).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return json.loads(text) if text else {}

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.dir.cleanup()
