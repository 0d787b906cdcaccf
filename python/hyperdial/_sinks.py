"""Where a run's records go: the server (:class:`_HTTPSink`), an offline file
(:class:`_OfflineSink`, uploaded later by ``hyperdial sync``) or nowhere (:class:`_NullSink`,
a disabled run); and the spill file (:class:`_SpillFile`) that keeps the points the server did
not take within the retry window.

Metric points travel as JSON text encoded once (``{"step", "time_ms", "values"}``); a step too
large for one request is cut into several points of the same step (:func:`_fit_point`), and
a batch the server refuses as too large is halved (:func:`_halve`), so no request body passes
``_settings.MAX_REQUEST_BYTES``. The offline and spill files share one format: JSON lines, an
``init`` record first.
"""

import json
import os
import socket
import time
import urllib.parse

from . import _settings
from ._transport import _SendError


def _now_ms():
    return int(time.time() * 1000)


def _dumps(obj):
    return json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


class _HTTPSink:
    def __init__(self, transport, run_id, finish_run, heartbeat):
        self.transport = transport
        self.run_id = run_id
        self.finish_run = finish_run
        self.heartbeat_enabled = heartbeat
        self._base = "/api/v1/runs/" + urllib.parse.quote(run_id, safe="")

    def send_points(self, encoded_points):
        body = ('{"points":[' + ",".join(encoded_points) + "]}").encode("utf-8")
        return self.transport.request("POST", self._base + "/metrics", body)

    def send_summary(self, values):
        return self.transport.request("PUT", self._base + "/summary", values)

    def heartbeat(self):
        return self.transport.request("POST", self._base + "/heartbeat", {})

    def finish(self, ended):
        """End the run: ``ended`` is (exit code, the time the run ended in ms since the
        epoch); the server backdates the run's end to that time, so a finish delivered late
        does not stretch the run."""
        if self.finish_run:
            exit_code, ended_ms = ended
            return self.transport.request("POST", self._base + "/finish",
                                          {"exit_code": exit_code, "ended_ms": ended_ms})
        return None

    def delivery(self, report):
        missing, files = report
        return self.transport.request("POST", self._base + "/delivery",
                                      {"missing": missing, "files": files})

    def close(self):
        pass


class _OfflineSink:
    heartbeat_enabled = False

    def __init__(self, path, init_record):
        self.path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")
        self._broken = False
        self._write([_dumps(init_record)])

    def _write(self, lines):
        if self._broken:
            raise _SendError("cannot write %s" % self.path, False)
        try:
            self._file.write("".join(line + "\n" for line in lines))
            self._file.flush()
        except (OSError, ValueError) as err:
            self._broken = True
            raise _SendError("cannot write %s (%s)" % (self.path, err), False) from None

    def send_points(self, encoded_points):
        # Each point is encoded as {"step":...}; a log record is the same object with "type"
        # in front.
        self._write(['{"type":"log",' + p[1:] for p in encoded_points])
        return None

    def send_summary(self, values):
        self._write([_dumps({"type": "summary", "values": values})])
        return None

    def send_config(self, values):
        """The script's own config values (``update_config``), merged into the run's config
        by ``hyperdial sync`` in the order written."""
        self._write([_dumps({"type": "config", "values": values})])

    def finish(self, ended):
        exit_code, ended_ms = ended
        self._write([_dumps({"type": "finish", "exit_code": exit_code, "time_ms": ended_ms})])
        return None

    def close(self):
        try:
            self._file.close()
        except OSError:
            pass


class _NullSink:
    heartbeat_enabled = False

    def send_points(self, encoded_points):
        return None

    def send_summary(self, values):
        return None

    def finish(self, ended):
        return None

    def close(self):
        pass


_ENVELOPE = len('{"points":[]}')


def _body_size(sizes_sum, count):
    """Bytes of ``{"points":[...]}`` around ``count`` points of ``sizes_sum`` bytes."""
    return _ENVELOPE + sizes_sum + max(0, count - 1)


def _fit_point(step, time_ms, values):
    """Encode one step's values as one point, or as several points of the same step when
    they would not fit in one request."""
    encoded = _dumps({"step": step, "time_ms": time_ms, "values": values})
    size = _body_size(len(encoded.encode("utf-8")), 1)
    if size <= _settings.MAX_REQUEST_BYTES or len(values) < 2:
        return [encoded]
    items = list(values.items())
    half = len(items) // 2
    return (_fit_point(step, time_ms, dict(items[:half]))
            + _fit_point(step, time_ms, dict(items[half:])))


def _halve(batch):
    """Split a batch the server refused as too large (413) in two; None when it is one value."""
    if len(batch) >= 2:
        half = len(batch) // 2
        return batch[:half], batch[half:]
    point = json.loads(batch[0])
    items = list(point.get("values", {}).items())
    if len(items) < 2:
        return None
    half = len(items) // 2
    first = dict(point, values=dict(items[:half]))
    second = dict(point, values=dict(items[half:]))
    return [_dumps(first)], [_dumps(second)]


class _SpillFile:
    """Points (and, for a run this process finishes, summary values and the finish record)
    that did not reach the server within the retry window, in the offline-file format with the
    run's id in the ``init`` record, so ``hyperdial sync`` adds them to that run. Each write
    opens, appends whole lines and closes, so a file renamed by an upload is never written to
    again (the next write starts a new one)."""

    def __init__(self, path, run_id, server):
        self.path = path
        self.run_id = run_id
        self.server = server

    @property
    def label(self):
        """``host:path``, as reported to the server."""
        return "%s:%s" % (socket.gethostname(), self.path)

    def write(self, records):
        """Append JSON lines; raise OSError when the file cannot be written."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            if f.tell() == 0:
                f.write(_dumps({"type": "init", "run": self.run_id, "server": self.server,
                                "host": socket.gethostname(), "time_ms": _now_ms()}) + "\n")
            f.write("".join(r + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())


def _spill_file(directory, run_id, server):
    """The spill file of this process for ``run_id``: ``<dir>/<run>.py<pid>.jsonl``, in
    ``directory`` or else ``$HYPERDIAL_DIR/offline``."""
    if not directory:
        directory = os.path.join(_settings.env("HYPERDIAL_DIR", ".hyperdial"), "offline")
    name = "%s.py%d.jsonl" % (run_id.replace("/", "_"), os.getpid())
    return _SpillFile(os.path.join(os.path.abspath(directory), name), run_id, server)
