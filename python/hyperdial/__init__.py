"""hyperdial: report metrics from a training script to a hyperdial server.

Usage::

    import hyperdial

    defaults = {"lr": 0.01, "epochs": 10, "optimizer": {"kind": "sgd", "momentum": 0.9}}
    with hyperdial.init(config=defaults, project="mnist") as run:
        lr = run.config.lr                      # the sweep's value when run by an agent
        for epoch in range(run.config.epochs):
            val_loss = train_one_epoch(lr, run.config.optimizer.kind)
            run.log({"epoch": epoch, "val_loss": val_loss})
        run.summary["final_val_loss"] = val_loss

``init`` picks one of three modes by itself:

* **agent** -- ``HYPERDIAL_RUN_ID`` is set (the script was started by ``hyperdial agent``):
  the sweep's values (the JSON file at ``HYPERDIAL_CONFIG``) override the defaults, metrics go
  to the run the agent claimed, and the agent reports the exit status.
* **server** -- no run id, but a server answers at ``HYPERDIAL_SERVER``
  (default ``http://127.0.0.1:8337``): a run outside any sweep is created, logged to and
  finished by this process.
* **offline** -- no server answers, or ``HYPERDIAL_MODE=offline``: everything is appended as
  JSON lines to ``$HYPERDIAL_DIR/offline/<local-id>.jsonl``; ``hyperdial sync`` uploads it.

``run.history()`` reads what a run logged back from the server: one dict per step by default,
or columns, or a pandas DataFrame when asked (see :meth:`Run.history`); ``hyperdial.Api()``
reads any run or sweep back from another process (see :class:`Api`).

Metrics are sent in batches by a background thread; a server that goes away never makes the
training script fail. Every transient failure (no connection, timeout, 5xx, 408, 429) is
retried with backoff for the retry window (60 s, ``HYPERDIAL_RETRY_SECONDS``), also when the
script ends; points still unsent after it are kept in a spill file that ``hyperdial sync``
uploads, and the run's record on the server says how many are missing. An ``https://``
server is verified against the system's certificate authorities plus the PEM file named by
``HYPERDIAL_CA_CERT`` (a private CA, or the server's self-signed certificate; the agent sets
it for its runs); a certificate that does not verify is an error, never retried. This package
is two files using only the standard library (Python 3.8 or newer): this one and
``_states.py``, the run and sweep state words generated from the server's definitions. The
reference is docs/python.md.
"""

import array
import difflib
import atexit
import base64
import signal
import collections.abc
import contextlib
import http.client
import json
import math
import numbers
import os
import re
import secrets
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import weakref

from ._states import IN_FLIGHT_RUN_STATES, RUN_STATES, TERMINAL_RUN_STATES, RunState

__version__ = "0.1.0"

__all__ = [
    "init",
    "log",
    "finish",
    "Run",
    "Config",
    "Summary",
    "run",
    "config",
    "summary",
    "DEFAULT_SERVER",
    "Sweep",
    "Trial",
    "TrialPruned",
    "NoMetricError",
    "Api",
    "HyperdialWarning",
    "ConfigWarning",
    "ValueWarning",
    "QueryWarning",
    "lr_range_test",
    "lr_range_schedule",
    "lr_range_suggestion",
    "smooth_losses",
    "LRRangeTest",
]

#: The server used when ``HYPERDIAL_SERVER`` is not set.
DEFAULT_SERVER = "http://127.0.0.1:8337"

# Tunables. They are read at call time, so tests may patch them.
_FLUSH_INTERVAL = 0.5  # seconds between two flushes while points arrive
_FLUSH_POINTS = 200  # flush at once when this many points are buffered
_MAX_BUFFER = 100000  # points kept in memory while the server is away; the oldest spill first
_BATCH_POINTS = 1000  # points per request at most
#: The API's one request-size limit in bytes (docs/api.md): the server's MAX_BODY_BYTES and the
#: agent's MAX_REQUEST_BYTES. Every request body of this client stays at or below it.
_MAX_REQUEST_BYTES = 8 * 1024 * 1024
_DEFAULT_RETRY_SECONDS = 60.0  # the retry window when HYPERDIAL_RETRY_SECONDS is not set
_TERM_FLUSH_SECONDS = 5.0  # seconds finish() waits for the server after SIGTERM, then spills
_REQUEST_TIMEOUT = 5.0  # seconds, for one small request (1 s more per 256 KiB of body)
_PROBE_TIMEOUT = 0.5  # seconds, for the request that looks for a server
_RETRY_DELAYS = (0.25, 0.75)  # sleeps between the attempts of one delivery
_BACKOFF_MAX = 30.0  # seconds at most between two flush attempts while the server is down
_HEARTBEAT_INTERVAL = 20.0  # seconds of silence before a heartbeat (server mode only)
_GIT_TIMEOUT = 2.0  # seconds per git command

_WARN_PREFIX = "[hyperdial] "

#: The current run, set by :func:`init` and cleared by :func:`finish`.
run = None
#: The current run's :class:`Config`, set by :func:`init`.
config = None
#: The current run's :class:`Summary`, set by :func:`init`.
summary = None

_active_runs = []
_active_lock = threading.Lock()
_hooks_installed = False
_uncaught_exception = False
_agent_next_step = {}  # run id -> next step, so a second init() under an agent goes on counting


def _warn(message):
    try:
        sys.stderr.write(_WARN_PREFIX + message + "\n")
        sys.stderr.flush()
    except Exception:  # stderr closed at shutdown: nothing better to do
        pass


def _now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------------
# Config


class Config(dict):
    """The run's configuration: a ``dict`` whose keys can also be read as attributes.

    Nested mappings are ``Config`` objects too, so ``config.optimizer.lr`` and
    ``config["optimizer"]["lr"]`` are the same value. ``in``, ``get``, iteration, ``len``,
    ``dict(config)`` and ``json.dumps(config)`` work as for any dict; :meth:`as_dict` returns a
    deep copy made of plain dicts. Setting a key (``config.seed = 1`` or ``config["seed"] = 1``)
    changes it in this process only: the server keeps the config the run started with.
    """

    __slots__ = ()

    def __init__(self, data=None, **kwargs):
        """Build a config from a mapping and/or keyword arguments; nested dicts are copied."""
        super().__init__()
        self.update(data or {}, **kwargs)

    def __setitem__(self, key, value):
        if isinstance(value, collections.abc.Mapping) and not isinstance(value, Config):
            value = Config(value)
        super().__setitem__(key, value)

    def update(self, other=(), **kwargs):
        """Set keys from a mapping (or an iterable of pairs) and keyword arguments."""
        if isinstance(other, collections.abc.Mapping):
            other = other.items()
        for key, value in other:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def setdefault(self, key, default=None):
        """Return ``config[key]``, first setting it to ``default`` when it is missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self):
        """A deep copy, as a ``Config``."""
        return Config(self.as_dict())

    def as_dict(self):
        """A deep copy made of plain ``dict`` objects (lists are copied too)."""
        return _plain(self)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                "config has no key %r (keys: %s)" % (name, ", ".join(map(str, self)) or "none")
            ) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self):
        return sorted(set(dir(type(self))) | {k for k in self if isinstance(k, str)})

    def __repr__(self):
        return "Config(%r)" % (_plain(self),)

    def __reduce__(self):
        return (Config, (_plain(self),))


def _plain(value):
    if isinstance(value, collections.abc.Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _deep_merge(defaults, override):
    """``defaults`` with ``override`` laid over it, mappings merged key by key."""
    merged = Config(defaults)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, collections.abc.Mapping) and isinstance(
            value, collections.abc.Mapping
        ):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _overridden(given, sweep):
    """Whether laying ``sweep`` over ``given`` changes a value ``given`` holds."""
    if isinstance(given, collections.abc.Mapping) and isinstance(sweep, collections.abc.Mapping):
        return any(k in sweep and _overridden(v, sweep[k]) for k, v in given.items())
    return _plain(given) != _plain(sweep)


def _jsonable(value):
    """A JSON-ready copy of a config or summary value: NaN and infinities become None,
    unknown objects their ``str()``."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, collections.abc.Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item) and not isinstance(value, (bytes, bytearray)):
        try:
            return _jsonable(item())
        except Exception:
            pass
    return str(value)


# --------------------------------------------------------------------------------------------
# Metric values


def _metric_value(key, value):
    """A logged value as JSON: a number, or None for NaN and infinities."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None:
        return None
    item = getattr(value, "item", None)  # numpy scalars, 0-d arrays, one-element tensors
    if callable(item) and not isinstance(value, (str, bytes, bytearray)):
        try:
            scalar = item()
        except Exception:
            scalar = None
        if isinstance(scalar, (bool, numbers.Real)):
            return _metric_value(key, scalar)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    raise TypeError(
        "hyperdial: the value logged for %r must be a number (int, float or bool), got %s %s"
        % (key, type(value).__name__, text)
    )


def _flatten_values(data, prefix, out):
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise TypeError(
                "hyperdial: metric names must be non-empty strings, got %r" % (key,)
            )
        name = prefix + key
        if isinstance(value, collections.abc.Mapping):
            _flatten_values(value, name + ".", out)
        else:
            out[name] = _metric_value(name, value)
    return out


# --------------------------------------------------------------------------------------------
# Summary


class Summary(collections.abc.Mapping):
    """The run's summary: the last logged value of every metric, overlaid by values set here.

    ``run.summary["best_acc"] = 0.9`` (or :meth:`update`) records a value; values set here
    are sent to the server (``PUT /api/v1/runs/{id}/summary``) with the next flush and at
    ``finish()``. Reading gives the value set here, else the last value logged under that
    name. Values may be numbers, strings, booleans, None, lists or dicts; NaN is sent as null.
    """

    def __init__(self, run):
        """Created by :class:`Run`; not meant to be built directly."""
        self._run = run
        self._explicit = {}
        self._logged = {}

    def _view(self):
        with self._run._lock:
            merged = dict(self._logged)
            merged.update(self._explicit)
        return merged

    def __getitem__(self, key):
        with self._run._lock:
            if key in self._explicit:
                return self._explicit[key]
            return self._logged[key]

    def __iter__(self):
        return iter(self._view())

    def __len__(self):
        return len(self._view())

    def __contains__(self, key):
        with self._run._lock:
            return key in self._explicit or key in self._logged

    def __setitem__(self, key, value):
        if not isinstance(key, str) or not key:
            raise TypeError("hyperdial: summary keys must be non-empty strings, got %r" % (key,))
        self._run._set_summary({key: _jsonable(value)})

    def update(self, other=(), **kwargs):
        """Set several summary values at once, from a mapping and/or keyword arguments."""
        values = dict(other, **kwargs)
        for key in values:
            if not isinstance(key, str) or not key:
                raise TypeError(
                    "hyperdial: summary keys must be non-empty strings, got %r" % (key,)
                )
        self._run._set_summary({k: _jsonable(v) for k, v in values.items()})

    def as_dict(self):
        """A plain dict of everything the summary holds."""
        return self._view()

    def __repr__(self):
        return "Summary(%r)" % (self._view(),)


# --------------------------------------------------------------------------------------------
# Transport


class _SendError(Exception):
    def __init__(self, message, retryable, status=None, payload=None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status  # the HTTP status, when the server answered
        self.payload = payload  # the server's decoded JSON error body, when there is one


_LOOPBACK = ("localhost", "::1")


def _tls_context():
    """The TLS settings for https:// servers: the system's CAs plus ``HYPERDIAL_CA_CERT``.

    Raises ValueError naming the file when it cannot be used."""
    context = ssl.create_default_context()
    cafile = _env("HYPERDIAL_CA_CERT")
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError, ValueError) as err:
            raise ValueError(
                "HYPERDIAL_CA_CERT=%s cannot be used as a CA certificate file: %s" % (cafile, err)
            ) from None
    return context


def _tls_problem(err):
    """What to fix when ``err`` is a TLS failure that no retry cures, else None."""
    reason = getattr(err, "reason", None) or err
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            "the server's certificate does not verify (%s): set HYPERDIAL_CA_CERT to the "
            "certificate of the CA that signed it, or to the server's own when it is "
            "self-signed" % (getattr(reason, "verify_message", "") or reason)
        )
    if isinstance(reason, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(reason):
        return "the server does not speak TLS at this address (%s): use http://" % reason
    return None


class _KeptHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection kept open for many small requests, whose head and body leave in one
    TCP segment.

    ``http.client`` turns Nagle's algorithm off (``TCP_NODELAY``) and writes a request's head
    and its body with two ``send`` calls: two segments, and the server woken twice for one
    request. So the head is sent with ``MSG_MORE`` (Linux: hold the data until the next send)
    and the body right after it; where ``MSG_MORE`` does not exist both are plain sends."""

    _MORE = getattr(socket, "MSG_MORE", 0)

    def request(self, method, url, body=None, headers=None):
        self._body_follows = isinstance(body, bytes) and len(body) > 0
        try:
            super().request(method, url, body=body, headers=headers or {})
        finally:
            self._body_follows = False

    def send(self, data):
        if getattr(self, "_body_follows", False) and self._MORE:
            # The request's head: the kernel holds it until the body is sent.
            self._body_follows = False
            if self.sock is None:
                self.connect()
            self.sock.sendall(data, self._MORE)
            return
        super().send(data)


class _Transport:
    """JSON over HTTP(S) to one server, with the bearer token when there is one.

    With ``keep_alive`` (the ask/tell API's transport), when no proxy applies (loopback, or no
    proxy in the environment), each thread keeps one connection open and sends its requests
    over it: a new TCP connection per request costs more than a small request itself.
    Otherwise each request goes through urllib on a connection of its own."""

    def __init__(self, server, token, keep_alive=False):
        self.server = server.rstrip("/")
        self.token = token or None
        parts = urllib.parse.urlsplit(self.server)
        host = parts.hostname or ""
        handlers = []
        if parts.scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=_tls_context()))
        loopback = host in _LOOPBACK or host.startswith("127.")
        if loopback:
            # Never send loopback traffic through a proxy taken from the environment.
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)
        self._parts = parts
        self._keep_alive = keep_alive and parts.scheme in ("http", "https") and (
            loopback or not urllib.request.getproxies().get(parts.scheme))
        self._local = threading.local()
        # Every kept connection open, whichever thread holds it, so close() (and the exit of
        # the interpreter) can close them: a socket left to the garbage collector is a
        # ResourceWarning.
        self._kept = set()
        self._kept_lock = threading.Lock()
        if self._keep_alive:
            _open_transports.add(self)

    def _connection(self, timeout):
        """This thread's open connection to the server (made on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) != os.getpid():
            # A forked child never writes on its parent's connection.
            conn = None
        if conn is None:
            self._local.pid = os.getpid()
            parts = self._parts
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                                   context=_tls_context())
            else:
                conn = _KeptHTTPConnection(parts.hostname, parts.port, timeout=timeout)
            self._local.conn = conn
        if conn.sock is None:
            # About to connect (anew after close()): tracked until closed.
            with self._kept_lock:
                self._kept.add(conn)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop_connection(self):
        """Close the calling thread's kept connection, if it has one (a thread that ends
        calls this, so its socket is not left to the garbage collector)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._kept_lock:
                self._kept.discard(conn)
            conn.close()

    def close(self):
        """Close every kept connection of every thread. The transport stays usable: the next
        request opens a new connection."""
        with self._kept_lock:
            conns, self._kept = list(self._kept), set()
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter shutdown anything may be gone
            pass

    def _send_kept(self, method, path, data, headers, timeout):
        """One request over this thread's kept connection: (status, raw body, headers). A connection
        the server closed while it sat idle is replaced once."""
        for attempt in (0, 1):
            conn = self._connection(timeout)
            reused = conn.sock is not None
            try:
                conn.request(method, self._parts.path + path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as err:
                self._drop_connection()
                if reused and attempt == 0:
                    continue
                raise err
            except Exception:
                self._drop_connection()
                raise
            if resp.getheader("Connection", "").lower() == "close":
                self._drop_connection()
            return resp.status, raw, resp.getheaders()
        raise AssertionError("unreachable")

    def request(self, method, path, body=None, timeout=None, headers_out=None):
        """Send one request; return the decoded JSON answer (or None). Raises _SendError.
        A dict given as ``headers_out`` receives the answer's headers (lower-case names)."""
        if isinstance(body, bytes):
            data = body
        elif body is not None:
            data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
        else:
            data = None
        if timeout is None:
            # Large metric batches take the server a while to store: 1 s more per 256 KiB.
            timeout = _REQUEST_TIMEOUT + len(data or b"") / 262144.0
        if self._keep_alive:
            return self._request_kept(method, path, data, timeout, headers_out)
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", "hyperdial-python/" + __version__)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                raw = resp.read()
                if headers_out is not None:
                    headers_out.update((k.lower(), v) for k, v in resp.headers.items())
        except urllib.error.HTTPError as err:
            detail = ""
            payload = None
            try:
                payload = json.loads(err.read().decode("utf-8", "replace"))
                detail = payload.get("error") or ""
            except Exception:
                pass
            finally:
                err.close()  # the answer's connection, else left to the garbage collector
            retryable = err.code >= 500 or err.code in (408, 429)
            message = "%s %s answered %d%s" % (
                method,
                path.split("?")[0],
                err.code,
                ": " + detail if detail else "",
            )
            raise _SendError(message, retryable, err.code, payload) from None
        except Exception as err:  # URLError, timeouts, resets, bad status lines
            problem = _tls_problem(err)
            if problem:
                raise _SendError("TLS with %s failed: %s" % (self.server, problem), False) from None
            reason = getattr(err, "reason", None) or err
            raise _SendError("cannot reach %s (%s)" % (self.server, reason), True) from None
        return _decoded(raw)

    def _request_kept(self, method, path, data, timeout, headers_out=None):
        headers = {"Accept": "application/json",
                   "User-Agent": "hyperdial-python/" + __version__,
                   "Host": self._parts.netloc.rpartition("@")[2]}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        try:
            status, raw, answer_headers = self._send_kept(method, path, data, headers, timeout)
        except Exception as err:  # refused, timeouts, resets, bad status lines, TLS
            problem = _tls_problem(urllib.error.URLError(err))
            if problem:
                raise _SendError("TLS with %s failed: %s" % (self.server, problem), False) from None
            reason = getattr(err, "reason", None) or err
            raise _SendError("cannot reach %s (%s)" % (self.server, reason), True) from None
        if status >= 400:
            payload = None
            detail = ""
            try:
                payload = json.loads(raw.decode("utf-8", "replace"))
                detail = payload.get("error") or ""
            except Exception:
                pass
            retryable = status >= 500 or status in (408, 429)
            message = "%s %s answered %d%s" % (
                method, path.split("?")[0], status, ": " + detail if detail else "")
            raise _SendError(message, retryable, status, payload)
        if headers_out is not None:
            headers_out.update((k.lower(), v) for k, v in answer_headers)
        return _decoded(raw)


#: Transports with kept connections (weakly held): closed at exit, see _close_transports.
_open_transports = weakref.WeakSet()


def _close_transports():
    """Close the kept connections of every transport still alive (at interpreter exit)."""
    for transport in list(_open_transports):
        transport.close()


atexit.register(_close_transports)


def _decoded(raw):
    """A JSON answer body, decoded; None when empty or not JSON."""
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Sinks: where a run's records go


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

    def finish(self, exit_code):
        if self.finish_run:
            return self.transport.request("POST", self._base + "/finish", {"exit_code": exit_code})
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

    def finish(self, exit_code):
        self._write([_dumps({"type": "finish", "exit_code": exit_code, "time_ms": _now_ms()})])
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

    def finish(self, exit_code):
        return None

    def close(self):
        pass


def _dumps(obj):
    return json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def _retry_seconds():
    """The retry window: ``HYPERDIAL_RETRY_SECONDS`` (seconds, > 0), else 60."""
    try:
        value = float(_env("HYPERDIAL_RETRY_SECONDS", ""))
    except ValueError:
        return _DEFAULT_RETRY_SECONDS
    if not (0 < value < 1e9):
        return _DEFAULT_RETRY_SECONDS
    return max(0.1, value)


_ENVELOPE = len('{"points":[]}')


def _body_size(sizes_sum, count):
    """Bytes of ``{"points":[...]}`` around ``count`` points of ``sizes_sum`` bytes."""
    return _ENVELOPE + sizes_sum + max(0, count - 1)


def _fit_point(step, time_ms, values):
    """Encode one step's values as one point, or as several points of the same step when
    they would not fit in one request."""
    encoded = _dumps({"step": step, "time_ms": time_ms, "values": values})
    if _body_size(len(encoded.encode("utf-8")), 1) <= _MAX_REQUEST_BYTES or len(values) < 2:
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


# --------------------------------------------------------------------------------------------
# Reading a run's history back

_HISTORY_TIMEOUT = 120.0  # seconds for one page of a history read (up to about 20 MB)
_HISTORY_PAGE_STEPS = None  # steps per answer of a history() read; None: the server's cap
_SAMPLED_KEYS = 64  # metrics in one answer of the downsampled history (the server's cap)
_MIN_MAX_POINTS, _MAX_MAX_POINTS = 10, 100000  # the server's range for max_points


def _history_path(run_id, keys, after_step=None, limit=None):
    path = "/api/v1/runs/%s/history/packed" % urllib.parse.quote(run_id, safe="")
    query = []
    if keys:
        query.append("keys=" + urllib.parse.quote(",".join(keys), safe=","))
    if after_step is not None:
        query.append("after_step=%d" % after_step)
    if limit is not None:
        query.append("limit=%d" % limit)
    return path + ("?" + "&".join(query) if query else "")


def _history_keys(keys):
    """``keys`` as a list of names (None for every metric); a name holding a comma cannot
    be asked for (the API separates names with commas)."""
    if keys is None:
        return None
    if isinstance(keys, str):
        keys = [keys]
    out = []
    for key in keys:
        if not isinstance(key, str) or not key:
            raise TypeError("hyperdial: history keys are metric names, got %r" % (key,))
        if "," in key:
            raise ValueError("hyperdial: a metric name with a comma (%r) cannot be asked for; "
                             "read every metric (keys=None) instead" % key)
        if key not in out:
            out.append(key)
    return out or None


def _unpack(code, text, count):
    """A packed list of the history answer: base64 of ``count`` little-endian 8-byte numbers
    (``code`` ``"q"``: signed integers, ``"d"``: doubles), as a Python list."""
    values = array.array(code)
    values.frombytes(base64.b64decode(text))
    if len(values) != count:
        raise RuntimeError("hyperdial: a packed history list holds %d values, not %d"
                           % (len(values), count))
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def _unpacked(page):
    """A ``GET /runs/{id}/history/packed`` answer as ``(steps, time_ms, columns)`` lists:
    ``None`` where a metric has no value, ``float("nan")`` where the value logged was not
    finite."""
    count = page.get("count")
    if not isinstance(count, int) or not isinstance(page.get("columns"), dict):
        raise RuntimeError("hyperdial: the server's history answer is not packed columns: %r"
                           % (str(page)[:200],))
    steps = _unpack("q", page["steps"], count)
    stamps = _unpack("q", page["time_ms"], count)
    non_finite = page.get("non_finite") or {}
    nan = float("nan")
    columns = {}
    for name, text in page["columns"].items():
        column = _unpack("d", text, count)
        total = sum(column)  # NaN exactly when some value is (the packed lists hold no inf)
        if total != total:
            column = [None if v != v else v for v in column]
            for i in non_finite.get(name, ()):
                column[i] = nan
        columns[name] = column
    return steps, stamps, columns


def _not_found(err, run_id, server):
    """The error to raise for a ``404`` of a history read: KeyError for an unknown run,
    RuntimeError for a server without the route (one older than this client)."""
    text = _error_text(err)
    if text.startswith("no route"):
        return RuntimeError("hyperdial: the server at %s cannot serve a run's history to this "
                            "client (%s); it is older than the client" % (server, text))
    return KeyError("hyperdial: no run %r on %s" % (run_id, server))


_KNOWN_KEYS_SHOWN = 20  # metric names a warning about unknown keys lists at most


def _warn_unknown_keys(run_id, asked, answer, stacklevel):
    """Warn (``warnings.warn``, a UserWarning) when ``keys`` asked for names the run never
    logged: they have no points, so the history holds nothing for them, as in W&B, but a
    misspelt name should not pass unnoticed. Names the unknown keys, the closest known name
    of each, and the run's metrics (at most ``_KNOWN_KEYS_SHOWN`` of them). ``answer`` is a
    history answer (its ``unknown_keys``; from ``keys``, every metric of the run, for a
    server that does not send them). ``stacklevel`` counts from the caller of this."""
    if not asked or not isinstance(answer, dict):
        return
    known = sorted(k for k in answer.get("keys") or () if isinstance(k, str))
    unknown = answer.get("unknown_keys")
    if not isinstance(unknown, list):
        known_set = set(known)
        unknown = [k for k in asked if k not in known_set]
    if not unknown:
        return
    logged = "its metrics are " + _listed(known) if known else "it has logged no metric yet"
    warnings.warn(
        "hyperdial: run %s never logged %s (asked for in keys=), so the history has no "
        "values for %s; %s%s" % (
            run_id, ", ".join(repr(k) for k in unknown),
            "it" if len(unknown) == 1 else "them", logged, _did_you_mean(unknown, known)),
        UserWarning, stacklevel=stacklevel + 1)


def _listed(names):
    """``names`` (sorted) for a message: the first ``_KNOWN_KEYS_SHOWN``, and how many more."""
    more = len(names) - _KNOWN_KEYS_SHOWN
    return ", ".join(names[:_KNOWN_KEYS_SHOWN]) + (" and %d more" % more if more > 0 else "")


def _did_you_mean(unknown, known):
    """`` (did you mean 'loss' for 'los'?)`` for the names of ``unknown`` that have a close
    name among ``known``; "" when none has."""
    guesses = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            guesses.append("%r for %r" % (close[0], name))
    return " (did you mean %s?)" % ", ".join(guesses) if guesses else ""


def _history_pages(transport, run_id, keys, after_step=None, limit=None, stacklevel=None):
    """Each answer of ``GET /runs/{id}/history/packed`` from ``after_step`` on, following
    ``next_after_step`` until the last step, unpacked (see :func:`_unpacked`). With
    ``stacklevel`` (how many frames above this generator's the user's code is), keys the run
    never logged are warned about once, at the first answer (:func:`_warn_unknown_keys`)."""
    first = True
    while True:
        page = _call(transport, "GET", _history_path(run_id, keys, after_step, limit),
                     ok_statuses=(404,), timeout=_HISTORY_TIMEOUT)
        if isinstance(page, _SendError):
            raise _not_found(page, run_id, transport.server)
        if not isinstance(page, dict):
            raise RuntimeError("hyperdial: the server's history answer is not JSON")
        if first and stacklevel is not None:
            _warn_unknown_keys(run_id, keys, page, stacklevel + 1)
        first = False
        yield _unpacked(page)
        after_step = page.get("next_after_step")
        if not page.get("truncated") or after_step is None:
            return


_ROW_MAKERS = {}  # number of columns -> a function making one dict per row (see _row_maker)


def _row_maker(width):
    """A function ``f(keys, columns)`` giving ``[{keys[0]: a, keys[1]: b, ...} for a, b, ...
    in zip(*columns)]`` for ``width`` columns, written out as a dict display: about twice as
    fast as ``dict(zip(keys, row))`` per row. Only numbered identifiers go into the source,
    never a metric name (names are passed in ``keys``), as ``collections.namedtuple`` does."""
    maker = _ROW_MAKERS.get(width)
    if maker is None:
        ks = ["k%d" % i for i in range(width)]
        vs = ["v%d" % i for i in range(width)]
        source = "def make(keys, columns):\n    %s, = keys\n    return [{%s} for %s, in zip(*columns)]\n" % (
            ", ".join(ks), ", ".join("%s: %s" % kv for kv in zip(ks, vs)), ", ".join(vs))
        scope = {}
        exec(source, scope)  # noqa: S102 -- identifiers only, see above
        maker = _ROW_MAKERS[width] = scope["make"]
    return maker


def _as_rows(steps, stamps, columns):
    """One dict per step: ``_step``, ``_timestamp`` and each metric with a value there."""
    dense = [(name, col) for name, col in columns.items() if None not in col]
    sparse = [(name, col) for name, col in columns.items() if None in col]
    names = ["_step", "_timestamp"] + [name for name, _ in dense]
    # Columns without gaps go into the dicts at once; gaps are left out, one column at a
    # time. Up to 256 columns by a dict display (see _row_maker), more by dict(zip()).
    lists = [steps, stamps] + [col for _, col in dense]
    if len(names) <= 256:
        rows = _row_maker(len(names))(names, lists)
    else:
        rows = [dict(zip(names, values)) for values in zip(*lists)]
    for name, col in sparse:
        for row, value in zip(rows, col):
            if value is not None:
                row[name] = value
    return rows


def _read_history(transport, run_id, keys=None, max_points=None, columns=False, pandas=False):
    """The body of ``history()`` (see :meth:`_HistoryReader.history`)."""
    keys = _history_keys(keys)
    if max_points is not None:
        if isinstance(max_points, bool) or not isinstance(max_points, numbers.Integral) \
                or not _MIN_MAX_POINTS <= max_points <= _MAX_MAX_POINTS:
            raise ValueError("hyperdial: max_points must be an integer from %d to %d (or None "
                             "for every point), got %r"
                             % (_MIN_MAX_POINTS, _MAX_MAX_POINTS, max_points))
        steps, stamps, cols = _sampled_history(transport, run_id, keys, int(max_points))
    else:
        steps, stamps, cols = [], [], {}
        # The frames above the generator's to the caller's: _read_history, history(), it.
        for page_steps, page_stamps, page_cols in _history_pages(
                transport, run_id, keys, limit=_HISTORY_PAGE_STEPS, stacklevel=3):
            if not steps:
                steps, stamps, cols = page_steps, page_stamps, page_cols
                continue
            before, added = len(steps), len(page_steps)
            steps.extend(page_steps)
            stamps.extend(page_stamps)
            # A run still logging may have a new metric by the next page.
            for name, col in page_cols.items():
                cols.setdefault(name, [None] * before).extend(col)
            for col in cols.values():
                if len(col) < before + added:
                    col.extend([None] * (before + added - len(col)))
    stamps = [t / 1000.0 for t in stamps]
    if pandas:
        import pandas as pd  # only when asked for
        frame = {"_step": steps, "_timestamp": stamps}
        frame.update(cols)
        return pd.DataFrame(frame)
    if columns:
        out = {"_step": steps, "_timestamp": stamps}
        out.update(cols)
        return out
    return _as_rows(steps, stamps, cols)


def _sampled_history(transport, run_id, keys, max_points):
    """At most ``max_points`` points per metric (``GET /runs/{id}/history?max_points=``,
    evenly spaced by step), merged into columns over the union of their steps. The server
    samples at most ``_SAMPLED_KEYS`` metrics an answer, so more are asked for in groups."""
    asked = keys is not None
    if keys is None:
        # Every metric's name, from a one-step page of the whole history.
        first = _call(transport, "GET", _history_path(run_id, None, limit=1),
                      ok_statuses=(404,), timeout=_HISTORY_TIMEOUT)
        if isinstance(first, _SendError):
            raise _not_found(first, run_id, transport.server)
        keys = list((first or {}).get("keys") or [])
    series = {}
    merged = {"keys": None, "unknown_keys": []}
    for start in range(0, max(len(keys), 1), _SAMPLED_KEYS):
        group = keys[start:start + _SAMPLED_KEYS]
        if not group:
            break
        path = "/api/v1/runs/%s/history?max_points=%d&keys=%s" % (
            urllib.parse.quote(run_id, safe=""), max_points,
            urllib.parse.quote(",".join(group), safe=","))
        answer = _call(transport, "GET", path, ok_statuses=(404,), timeout=_HISTORY_TIMEOUT)
        if isinstance(answer, _SendError):
            raise _not_found(answer, run_id, transport.server)
        series.update((answer or {}).get("series") or {})
        if isinstance(answer, dict):
            merged["keys"] = answer.get("keys")
            unknown = answer.get("unknown_keys")
            if isinstance(unknown, list) and isinstance(merged["unknown_keys"], list):
                merged["unknown_keys"].extend(unknown)
            else:
                merged["unknown_keys"] = None  # a server without it: worked out from keys
    if asked:
        # The frames above this one to the caller's: _read_history, history(), it.
        _warn_unknown_keys(run_id, keys, merged, 4)
    times = {}
    for s in series.values():
        for step, t in zip(s["step"], s["time_ms"]):
            if t > times.get(step, -1):
                times[step] = t
    steps = sorted(times)
    row_of = {step: i for i, step in enumerate(steps)}
    nan = float("nan")
    cols = {}
    for name, s in series.items():
        col = [None] * len(steps)
        for step, value in zip(s["step"], s["value"]):
            col[row_of[step]] = nan if value is None else value  # a null logged is NaN
        cols[name] = col
    return steps, [times[s] for s in steps], cols


class _HistoryReader:
    """``history()`` and ``scan_history()`` for an object with a run ``id`` and a
    ``_history_transport()``."""

    def history(self, keys=None, max_points=None, columns=False, pandas=False):
        """The run's metric history as stored on the server.

        By default every point (no sampling), as a list with one dict per step in step order:
        ``{"_step": 3, "_timestamp": 1764501234.5, "loss": 0.41, ...}``, holding the metrics
        that have a value at that step (``_timestamp`` is the wall time in seconds since the
        epoch). A value logged as NaN or an infinity reads back as ``float("nan")``.

        * ``keys`` -- only these metrics (a list of names), and only the steps where at least
          one of them has a value; default every metric.
        * ``max_points`` -- at most this many points per metric, evenly spaced by step (the
          first and the last kept; 10 to 100,000, else ``ValueError``), instead of every point.
        * ``columns=True`` -- a dict of lists instead: ``"_step"``, ``"_timestamp"`` and one
          list per metric, entry ``i`` for step ``i``, ``None`` where a metric has no value.
        * ``pandas=True`` -- a ``pandas.DataFrame`` of those columns (NaN where a metric has
          no value); pandas is imported only then.

        A history longer than one answer of the server (1,000,000 values) is read in several
        requests. Raises KeyError for an unknown run. A name in ``keys`` that the run never
        logged has no values (as in W&B: no rows for it), and a ``UserWarning`` names it,
        the closest known name, and the run's metrics.
        """
        return _read_history(self._history_transport(), self.id, keys, max_points, columns,
                             pandas)

    def scan_history(self, keys=None, page_size=1000, min_step=None, max_step=None):
        """Iterate over the run's history one step (a dict as :meth:`history` gives) at a
        time, reading ``page_size`` steps per request: for a history too long to hold whole.
        Only steps ``min_step <= step < max_step`` when given."""
        if isinstance(page_size, bool) or not isinstance(page_size, numbers.Integral) \
                or page_size < 1:
            raise ValueError("hyperdial: page_size must be a positive integer, got %r"
                             % (page_size,))
        transport = self._history_transport()
        after = None if min_step is None else int(min_step) - 1
        # The frames above the generator's to the caller's: this generator, then it.
        for steps, stamps, columns in _history_pages(transport, self.id, _history_keys(keys),
                                                     after, int(page_size), stacklevel=2):
            for row in _as_rows(steps, [t / 1000.0 for t in stamps], columns):
                if max_step is not None and row["_step"] >= max_step:
                    return
                yield row


# --------------------------------------------------------------------------------------------
# Run


def exit_code_of(exc_type, exc):
    """The exit code a ``with`` block ending with ``exc`` (of type ``exc_type``, or ``None``)
    stands for, as the interpreter would exit: 0 without an exception, ``SystemExit``'s own
    integer code (0 for ``None``, 1 for anything else), 1 for any other exception."""
    if exc_type is None:
        return 0
    if issubclass(exc_type, SystemExit):
        value = getattr(exc, "code", None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return 0 if value is None else 1
    return 1


class Run(_HistoryReader):
    """One training run: its config, its metrics and its summary.

    Made by :func:`init`. Attributes:

    * ``id`` -- the server's run id, or the local id of an offline or disabled run;
    * ``mode`` -- ``"agent"``, ``"server"``, ``"offline"`` or ``"disabled"``;
    * ``sweep_id`` -- the sweep's id under an agent, else None;
    * ``project``, ``name`` -- as given to :func:`init` (``project`` defaults to
      ``HYPERDIAL_PROJECT`` or ``"default"``);
    * ``config`` -- the :class:`Config`; ``summary`` -- the :class:`Summary`;
    * ``server`` -- the server's base URL (agent and server modes), else None;
    * ``path`` -- the offline file (offline mode), else None.

    A ``Run`` is a context manager: leaving the ``with`` block calls :meth:`finish`, with exit
    code 1 when an exception is leaving it (the code of ``SystemExit``, for ``sys.exit``).
    """

    def __init__(self, mode, config, project, name, run_id, sweep_id, sink, server=None,
                 path=None, first_step=0, spill=None, report_delivery=False):
        """Created by :func:`init`; not meant to be built directly."""
        self.mode = mode
        self.config = config
        self.project = project
        self.name = name
        self.id = run_id
        self.sweep_id = sweep_id
        self.server = server
        self.path = path
        self._sink = sink
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self.summary = Summary(self)
        self._step = first_step
        self._points = collections.deque()
        self._pending_summary = {}
        self._last_flush = 0.0
        self._last_contact = time.monotonic()
        self._retry_at = 0.0
        self._failures = 0
        self._closing = False
        self._finished = False
        self._stop_requested = False
        self._warned = set()
        self._dropped = 0
        self._last_error = None
        self._sweep_values = {}  # the sweep's values (HYPERDIAL_CONFIG): they win
        self._spill = spill  # a _SpillFile for points the server did not take in time
        self._spilled = 0  # points written to it
        self._report_delivery = report_delivery  # tell the server what is missing at finish
        self._outage_since = None  # monotonic time of the first failure of an ongoing outage
        self._reader = None  # the transport of history reads, made on first use
        self._disabled_reason = "it was started disabled"  # why, for a disabled run's errors
        self._worker = None
        if not isinstance(sink, _NullSink):
            self._worker = threading.Thread(
                target=self._worker_main, name="hyperdial-sender", daemon=True
            )
            self._worker.start()

    # ---------------------------------------------------------------- public API

    @property
    def step(self):
        """The step the next :meth:`log` call without ``step`` will use."""
        with self._lock:
            return self._step

    @property
    def stop_requested(self):
        """True once the server asked this run to stop (early termination, cancellation).

        Under an agent the agent stops the process by itself; a script may also check this
        and end early.
        """
        return self._stop_requested

    @property
    def finished(self):
        """True once :meth:`finish` was called."""
        return self._finished

    def should_stop(self):
        """True when the run should end now: the server asked it to stop (an early-termination
        rule, or the sweep was cancelled) or the process received SIGTERM.

        Check it between epochs for a cooperative stop: save what you need, then return. It
        also hurries pending metrics to the server, whose answer carries the stop request::

            for epoch in range(epochs):
                train_one_epoch()
                run.log({"val_loss": evaluate()})
                if run.should_stop():
                    save_checkpoint()
                    break
        """
        with self._cond:
            if self._points:
                self._cond.notify_all()
        return self._stop_requested or _terminating

    def on_stop(self, callback):
        """Call ``callback()`` once if the process receives SIGTERM (how an agent stops a run),
        before pending metrics are sent and the process exits with status 143.

        Use it to save a checkpoint. The handler is installed only in the main thread and only
        when SIGTERM has no handler of the script's own. Returns ``callback`` so it can be used
        as a decorator.
        """
        _stop_callbacks.append(callback)
        _install_sigterm_handler()
        return callback

    def log(self, data, step=None):
        """Record metric values at one step.

        ``data`` maps metric names to numbers: ``int``, ``float`` and ``bool`` (sent as 1 or 0),
        numpy and torch scalars too. NaN and infinities are sent as null. A nested mapping is
        flattened with dots (``{"val": {"loss": 1}}`` logs ``val.loss``). Anything else raises
        ``TypeError``. ``step`` is a non-negative integer; by default it is the step after the
        previous one (0, 1, 2, ...). Points are buffered and sent by a background thread at
        most every 0.5 s, or at once when 200 are waiting, and at :meth:`finish`.
        """
        if not isinstance(data, collections.abc.Mapping):
            raise TypeError(
                "hyperdial: log() takes a dict of metric values, got %s" % type(data).__name__
            )
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral):
                raise TypeError(
                    "hyperdial: step must be an integer, got %s %r" % (type(step).__name__, step)
                )
            step = int(step)
            if step < 0:
                raise ValueError("hyperdial: step must be >= 0, got %d" % step)
        values = _flatten_values(data, "", {})
        if not values:
            return
        with self._cond:
            if self._finished:
                self._warn_once("log-after-finish", "log() after finish() is ignored")
                return
            if step is None:
                step = self._step
            self._step = max(self._step, step + 1)
            encoded = _fit_point(step, _now_ms(), values)
            self.summary._logged.update(values)
            was_empty = not self._points
            self._points.extend(encoded)
            overflow = len(self._points) - _MAX_BUFFER
            if overflow > 0:
                if self._spill is not None:  # one write for a tenth of the buffer, not one per log()
                    overflow = min(len(self._points), max(overflow, _MAX_BUFFER // 10))
                self._drop_oldest_locked(overflow)
            if was_empty or len(self._points) >= _FLUSH_POINTS:
                self._cond.notify_all()

    def finish(self, exit_code=0):
        """Send what is buffered and end the run. Calling it again does nothing.

        In server mode the run is ended with ``exit_code`` (0 is finished, anything else
        failed); in offline mode a ``finish`` record is written; under an agent this only
        flushes, since the agent reports how the process ended. Network failures are reported
        on stderr, never raised.
        """
        try:
            exit_code = int(exit_code if exit_code is not None else 0)
        except (TypeError, ValueError):
            exit_code = 1
        with self._cond:
            if self._finished:
                return
            self._finished = True
            self._closing = True
            self._cond.notify_all()
        deadline = self._finish_deadline()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(max(0.0, deadline - time.monotonic()))
        # Keep trying until everything is sent or the retry window is over.
        pause = 0.1
        while not self._flush(deadline=deadline, quiet=True):
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        spilled_before = self._spilled
        with self._lock:
            points, self._points = list(self._points), collections.deque()
            summary_left, self._pending_summary = self._pending_summary, {}
        lost = 0
        if points:
            if not self._spill_points(points):
                lost = len(points)
        if summary_left and self._spill_records([_dumps({"type": "summary", "values": summary_left})]):
            summary_left = {}
        if lost or summary_left:
            _warn("%d metric points and %d summary values could not be sent and are lost (%s)"
                  % (lost, len(summary_left), self._last_error))
        elif self._spilled > spilled_before:
            _warn("%d metric points did not reach the server within %g s (%s); they are kept in "
                  "%s: upload them with `hyperdial sync`"
                  % (self._spilled - spilled_before, _retry_seconds(), self._last_error,
                     self._spill.path))
        try:
            finish_deadline = max(deadline, time.monotonic() + 2.0)
            missing = self._spilled + self._dropped
            if self._report_delivery and missing:
                files = [self._spill.label] if self._spill is not None and self._spilled else []
                self._deliver(self._sink.delivery, (missing, files), finish_deadline, quiet=True)
            if self._deliver(self._sink.finish, exit_code, finish_deadline, quiet=True) == "fail":
                if getattr(self._sink, "finish_run", False) and self._spill_records(
                        [_dumps({"type": "finish", "exit_code": exit_code, "time_ms": _now_ms()})]):
                    _warn("could not report the end of the run (%s); `hyperdial sync` will"
                          % (self._last_error,))
                else:
                    _warn("could not report the end of the run (%s)" % (self._last_error,))
        finally:
            self._sink.close()
            _forget(self)

    def update_config(self, values):
        """Add the script's own values to ``run.config`` and to the config stored with the run.

        ``values`` is a mapping (nested mappings allowed) or an ``argparse.Namespace``. A key
        the sweep set (in the file at ``HYPERDIAL_CONFIG``) keeps the sweep's value, as W&B
        keeps a sweep's values over the script's; nested mappings are merged key by key; every
        other key is set. In agent and server mode the values are also sent to the server
        (``PUT /api/v1/runs/{id}/config``, which applies the same rule), so the run's stored
        config holds the script's defaults beside the sweep's values. A failed send is
        reported on stderr, never raised. Returns the top-level keys whose value the sweep
        kept (those given here with another value).
        """
        if values is None:
            return []
        if not isinstance(values, collections.abc.Mapping) and hasattr(values, "__dict__"):
            values = vars(values)
        if not isinstance(values, collections.abc.Mapping):
            raise TypeError("hyperdial: update_config() takes a dict or an argparse.Namespace, "
                            "got %s" % type(values).__name__)
        values = dict(values)
        merged = _deep_merge(_deep_merge(self.config, values), self._sweep_values)
        kept = [k for k in values if k in self._sweep_values
                and _overridden(values[k], self._sweep_values[k])]
        for key, value in merged.items():
            self.config[key] = value
        self._send_config(values)
        return kept

    def _send_config(self, values):
        """``PUT /api/v1/runs/{id}/config`` with ``values`` (agent and server mode only)."""
        transport = getattr(self._sink, "transport", None)
        body = _jsonable(values)
        if self.mode not in ("agent", "server") or transport is None or not self.id or not body:
            return
        path = "/api/v1/runs/%s/config" % urllib.parse.quote(self.id, safe="")
        error = None
        for delay in (0.0,) + tuple(_RETRY_DELAYS):
            if delay:
                time.sleep(delay)
            try:
                transport.request("PUT", path, body)
                return
            except _SendError as err:
                error = err
                if not err.retryable:
                    break
        self._warn_once("config", "could not store the run's config on the server (%s)" % error)

    def _send_name(self, name):
        """``PUT /api/v1/runs/{id}/name`` with the name the script gave its run."""
        transport = getattr(self._sink, "transport", None)
        if transport is None or not self.id:
            return
        path = "/api/v1/runs/%s/name" % urllib.parse.quote(self.id, safe="")
        error = None
        for delay in (0.0,) + tuple(_RETRY_DELAYS):
            if delay:
                time.sleep(delay)
            try:
                transport.request("PUT", path, {"name": str(name)})
                return
            except _SendError as err:
                error = err
                if not err.retryable:
                    break
        self._warn_once("name", "could not store the run's name on the server (%s)" % error)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.finish(exit_code=exit_code_of(exc_type, exc))
        return False

    def __repr__(self):
        return "<hyperdial.Run id=%r mode=%r>" % (self.id, self.mode)

    def _history_transport(self):
        """The connection :meth:`history` reads through: the run's server (agent and server
        modes). Points this process logged and has not sent yet are sent first (for up to
        the request timeout), so the history holds them."""
        if self.mode == "disabled":
            raise RuntimeError("hyperdial: run %s is disabled: nothing of it was recorded, so "
                               "it has no history to read (%s)"
                               % (self.id, self._disabled_reason))
        if self.mode not in ("agent", "server"):
            where = " (its points are in %s; `hyperdial sync` uploads them)" % self.path \
                if self.path else ""
            raise RuntimeError("hyperdial: run %s is %s: there is no server to read its "
                               "history from%s" % (self.id, self.mode, where))
        if not self._finished:
            self._flush(deadline=time.monotonic() + _REQUEST_TIMEOUT, quiet=True)
        if self._reader is None:
            token = getattr(getattr(self._sink, "transport", None), "token", None)
            self._reader = _Transport(self.server, token, keep_alive=True)
        return self._reader

    # ---------------------------------------------------------------- internals

    def _warn_once(self, key, message):
        if key not in self._warned:
            self._warned.add(key)
            _warn(message)

    def _drop_oldest_locked(self, count):
        oldest = [self._points.popleft() for _ in range(count)]
        if self._spill_points(oldest):
            self._warn_once(
                "overflow",
                "more than %d metric points are waiting to be sent; the oldest go to %s"
                % (_MAX_BUFFER, self._spill.path),
            )
            return
        self._dropped += count
        self._warn_once(
            "overflow",
            "more than %d metric points are waiting to be sent; dropping the oldest" % _MAX_BUFFER,
        )

    def _finish_deadline(self):
        """When finish() stops waiting for the server: the end of the retry window of the
        ongoing outage (or of a new one), sooner after SIGTERM (the agent's grace period)."""
        now = time.monotonic()
        window = _retry_seconds()
        with self._lock:
            since = self._outage_since
        deadline = now + window if since is None else max(now + 0.5, since + window)
        if _terminating:
            deadline = min(deadline, now + _TERM_FLUSH_SECONDS)
        return deadline

    def _window_over_locked(self):
        return (self._outage_since is not None
                and time.monotonic() - self._outage_since >= _retry_seconds())

    def _spill_records(self, records):
        """Append records to the spill file; False when there is none or it cannot be written."""
        if self._spill is None:
            return False
        try:
            self._spill.write(records)
        except OSError as err:
            self._warn_once("spill", "cannot write the spill file %s (%s)" % (self._spill.path, err))
            return False
        return True

    def _spill_points(self, points):
        if not self._spill_records(['{"type":"log",' + p[1:] for p in points]):
            return False
        self._spilled += len(points)
        return True

    def _set_summary(self, values):
        with self._cond:
            if self._finished:
                self._warn_once("summary-after-finish", "summary set after finish() is ignored")
                return
            self.summary._explicit.update(values)
            was_empty = not self._pending_summary and not self._points
            self._pending_summary.update(values)
            if was_empty:
                self._cond.notify_all()

    def _next_wakeup_locked(self, now):
        """Seconds until the worker has something to do (<= 0: now; None: nothing planned)."""
        times = []
        if self._points or self._pending_summary:
            if len(self._points) >= _FLUSH_POINTS:
                due = now
            else:
                due = self._last_flush + _FLUSH_INTERVAL
            times.append(max(due, self._retry_at))
        if self._sink.heartbeat_enabled:
            times.append(max(self._last_contact + _HEARTBEAT_INTERVAL, self._retry_at))
        if not times:
            return None
        return min(times) - now

    def _worker_main(self):
        while True:
            with self._cond:
                while True:
                    if self._closing:
                        return
                    now = time.monotonic()
                    wait = self._next_wakeup_locked(now)
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                has_data = bool(self._points or self._pending_summary)
            try:
                if has_data:
                    self._flush()
                elif self._sink.heartbeat_enabled:
                    self._heartbeat()
            except Exception as err:  # a bug here must not kill the sender silently
                self._warn_once("worker", "sender error: %r" % (err,))
                with self._lock:
                    self._retry_at = time.monotonic() + _BACKOFF_MAX

    def _heartbeat(self):
        try:
            answer = self._sink.heartbeat()
        except _SendError as err:
            with self._lock:
                if err.retryable:  # quietly: a flush warns when there is data to lose
                    self._last_contact = time.monotonic()
                else:  # this server does not take heartbeats for this run: stop sending them
                    self._sink.heartbeat_enabled = False
            return
        self._note_success(answer)

    def _note_success(self, answer):
        with self._lock:
            self._last_contact = time.monotonic()
            self._failures = 0
            self._retry_at = 0.0
            self._outage_since = None
        if isinstance(answer, dict) and answer.get("stop") is True:
            self._stop_requested = True

    def _note_failure(self, err, quiet=False):
        self._last_error = err
        with self._lock:
            if self._outage_since is None:
                self._outage_since = time.monotonic()
            self._failures += 1
            delay = min(_BACKOFF_MAX, 0.5 * (2 ** min(self._failures, 16)))
            self._retry_at = time.monotonic() + delay
        if quiet:
            return
        self._warn_once(
            "unreachable",
            "%s; metrics are kept and sent when the server is back (this warning is not repeated)" % (err,),
        )

    def _deliver(self, send, payload, deadline=None, quiet=False):
        """Send one payload with retries. Returns "ok", "drop" (the server refused it for
        good), "too-large" (413) or "fail" (still unreachable; warned about once unless
        quiet)."""
        attempt = 0
        while True:
            try:
                answer = send(payload)
            except _SendError as err:
                if err.status == 413:
                    return "too-large"
                if not err.retryable:
                    self._warn_once("refused:" + str(err), "%s; dropping that data" % (err,))
                    return "drop"
                delays = _RETRY_DELAYS
                if attempt < len(delays) and (
                    deadline is None or time.monotonic() + delays[attempt] < deadline
                ):
                    time.sleep(delays[attempt])
                    attempt += 1
                    continue
                self._note_failure(err, quiet)
                return "fail"
            self._note_success(answer)
            return "ok"

    def _take_batch_locked(self):
        """The oldest points that fit in one request (at most _BATCH_POINTS of them)."""
        batch, size = [], 0
        while self._points and len(batch) < _BATCH_POINTS:
            point = self._points[0]
            point_size = len(point.encode("utf-8"))
            if batch and _body_size(size + point_size, len(batch) + 1) > _MAX_REQUEST_BYTES:
                break
            batch.append(self._points.popleft())
            size += point_size
        return batch

    def _send_points(self, batch, deadline, quiet):
        """Send a batch, halving what the server refuses as too large. Returns the result of
        the last delivery and the points not sent ("fail" only)."""
        parts = [batch]
        while parts:
            part = parts.pop()
            result = self._deliver(self._sink.send_points, part, deadline, quiet)
            if result == "too-large":
                halves = _halve(part)
                if halves is not None:
                    parts.append(halves[1])
                    parts.append(halves[0])
                    continue
                with self._lock:
                    self._dropped += 1
                _warn("the server refused a metric value as too large (%s); dropping it"
                      % (self._last_error,))
                continue
            if result == "fail":
                rest = [p for q in reversed(parts) for p in q]
                return "fail", part + rest
        return "ok", []

    def _flush(self, deadline=None, quiet=False):
        """Send buffered points, then the pending summary. True when nothing is left."""
        if deadline is None:
            acquired = self._send_lock.acquire()
        else:
            acquired = self._send_lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        if not acquired:
            return False
        try:
            while True:
                with self._lock:
                    self._last_flush = time.monotonic()
                    batch = self._take_batch_locked()
                if not batch:
                    break
                result, unsent = self._send_points(batch, deadline, quiet)
                if result == "fail":
                    with self._lock:
                        self._points.extendleft(reversed(unsent))
                        if self._window_over_locked() and deadline is None:
                            # The outage outlasted the retry window: keep what waits on disk.
                            points, self._points = list(self._points), collections.deque()
                        else:
                            points = None
                        overflow = len(self._points) - _MAX_BUFFER
                        if overflow > 0:
                            self._drop_oldest_locked(overflow)
                    if points and not self._spill_points(points):
                        with self._lock:
                            self._points.extendleft(reversed(points))
                    elif points:
                        self._warn_once(
                            "spilled",
                            "the server did not take metrics for %g s; unsent points go to %s "
                            "(this warning is not repeated)" % (_retry_seconds(), self._spill.path))
                    return False
            with self._lock:
                pending, self._pending_summary = self._pending_summary, {}
            if pending:
                result = self._deliver(self._sink.send_summary, pending, deadline, quiet)
                if result == "fail":
                    with self._lock:
                        pending.update(self._pending_summary)
                        self._pending_summary = pending
                    return False
            return True
        finally:
            self._send_lock.release()


# --------------------------------------------------------------------------------------------
# Ask/tell: drive a sweep from Python without agents

_ASK_TIMEOUT = 300.0  # seconds ask() waits while the server answers 204 (nothing startable yet)
_ASK_BACKOFF = (0.05, 2.0)  # first and longest sleep between two claims answered 204 at once
_ASK_WAIT = 20.0  # seconds a claim may be held open by the server (its long poll, wait_ms)
_WAITED_HEADER = "x-hyperdial-waited-ms"  # on a 204 after the server held the claim open
_CONNECT_SECONDS = 1.5  # seconds Sweep.create/get look for a named server before giving up
_LOCAL_START_SECONDS = 20.0  # seconds a local server may take to start
_CALL_RETRY_FOR = 60.0  # seconds a sweep call is retried while the server is unreachable
_TRIAL_HEARTBEAT = 20.0  # seconds of silence before an open trial gets a heartbeat


def _claim_key():
    """A fresh idempotency key for one claim (``claim_key``): 32 hex digits. A server that
    stored the trial of a claim answers a retry carrying the same key with that trial; a
    server without the field ignores it."""
    return secrets.token_hex(16)


def _server_from(server):
    server = (server or _env("HYPERDIAL_SERVER", DEFAULT_SERVER)).strip().rstrip("/")
    if "://" not in server:
        server = "http://" + server
    return server


def _call(transport, method, path, body=None, ok_statuses=(), timeout=None, headers_out=None):
    """One API call for the ask/tell API. Network failures and 5xx answers are retried with
    backoff for up to ``_CALL_RETRY_FOR`` seconds; a 422 raises ValueError with the server's
    message; another 4xx raises RuntimeError, unless its status is in ``ok_statuses``, in
    which case the _SendError is returned for the caller to read."""
    started = time.monotonic()
    deadline = started + _CALL_RETRY_FOR
    delay = 0.25
    warned = False
    while True:
        try:
            return transport.request(method, path, body, timeout=timeout,
                                     headers_out=headers_out)
        except _SendError as err:
            if err.status in ok_statuses:
                return err
            if err.retryable and time.monotonic() + delay < deadline:
                if not warned and time.monotonic() - started >= 2.0:
                    # Say once that the client is waiting, and for how long at most.
                    warned = True
                    _warn("%s; retrying for up to %.0f s" % (err, _CALL_RETRY_FOR))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if err.status in (400, 422):
                raise ValueError(_error_text(err)) from None
            if err.retryable:
                raise RuntimeError(
                    "hyperdial: %s, after retrying for %.0f s: is the server running? Start "
                    "one with %s, or name another with server= or HYPERDIAL_SERVER"
                    % (err, time.monotonic() - started, _start_command(transport.server))
                ) from None
            raise RuntimeError("hyperdial: " + str(err)) from None


def _error_text(err):
    """The server's message for a refused request, with its diagnostics when it sent some."""
    payload = err.payload if isinstance(err.payload, dict) else {}
    text = payload.get("error") or str(err)
    lines = []
    for d in payload.get("diagnostics") or []:
        if isinstance(d, dict):
            where = d.get("path") or d.get("location") or ""
            msg = d.get("message") or json.dumps(d)
            lines.append("  %s%s" % (where + ": " if where else "", msg))
        else:
            lines.append("  %s" % (d,))
    if lines and not all(line.strip() in text for line in lines):
        text += "\n" + "\n".join(lines)
    return text


_CONFIG_FILE_SUFFIXES = (".yaml", ".yml", ".json")

#: The config text's name in the server's messages when it came as text without a file.
_TEXT_SOURCE = "<sweep config text>"


def _is_program_warning(diagnostic):
    """Whether a config warning is the server's "no `program` and no `command`" (agents
    cannot start the sweep's runs), which says nothing to a sweep driven by ask/tell. The
    wire's diagnostics carry no code, so it is told by its key path, ``program``, and the
    start of its message."""
    return (diagnostic.get("path") == "program"
            and str(diagnostic.get("message") or "").startswith("no `program`"))


def _rendered_diagnostic(diagnostic, source):
    """A diagnostic of the server as it prints them: ``SOURCE:LINE:COLUMN: warning: PATH:
    MESSAGE`` for a config given as text (``source`` its file name, or ``<sweep config
    text>``), ``PATH: warning: MESSAGE`` for one given as a dict (no text, no position);
    the hint on a line of its own."""
    severity = diagnostic.get("severity") or "warning"
    path = diagnostic.get("path") or ""
    location = diagnostic.get("location")
    message = diagnostic.get("message") or json.dumps(diagnostic)
    if source is None:
        text = "%s: %s: %s" % (path or "(the root)", severity, message)
    else:
        where = source
        if isinstance(location, dict) and location.get("line") is not None:
            where += ":%s:%s" % (location.get("line"), location.get("column"))
        text = "%s: %s: %s%s" % (where, severity, path + ": " if path else "", message)
    if diagnostic.get("hint"):
        text += "\n  hint: %s" % diagnostic["hint"]
    return text


def _warn_config(created, body):
    """Emit the warnings of a created sweep (the ``warnings`` of ``POST /api/v1/sweeps``'s
    answer) as :class:`ConfigWarning`, each as the server renders it, but not the one about
    a missing ``program`` (a sweep made here is driven by ask/tell and needs none); and,
    for a sweep without a metric, that a told value needs one."""
    source = None if "config" in body else (body.get("file") or _TEXT_SOURCE)
    for diagnostic in created.get("warnings") or ():
        if not isinstance(diagnostic, dict) or _is_program_warning(diagnostic):
            continue
        warnings.warn("hyperdial: " + _rendered_diagnostic(diagnostic, source), ConfigWarning,
                      stacklevel=_user_stacklevel())
    if not created.get("metric"):
        warnings.warn(
            "hyperdial: sweep %s has no `metric`: tell() with a value needs `metric: {name: "
            "..., goal: minimize|maximize}` in its config (without one a trial can only be "
            "told None or a state, and best() has nothing to compare)" % created.get("id"),
            ConfigWarning, stacklevel=_user_stacklevel())


def _sweep_text(config):
    """The ``POST /sweeps`` body of a config given as text or as a file: ``{"source"}`` for
    text, which the server names ``<sweep config text>`` in its messages (no file was
    written), and ``{"source", "file"}`` for a file, named by the path given. A file is a
    ``os.PathLike``, or a string of one line ending in ``.yaml``, ``.yml`` or ``.json`` (such
    a string is never a valid config as text: it is a YAML scalar, not a mapping)."""
    if isinstance(config, bytes):
        return {"source": config.decode("utf-8")}
    if isinstance(config, str):
        name = config.strip()
        if "\n" in name or not name.lower().endswith(_CONFIG_FILE_SUFFIXES):
            return {"source": config}
        path = name
    else:
        path = os.fspath(config)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            "hyperdial: Sweep.create(%r): no such file %s (in %s); a sweep config is a dict, "
            "YAML/JSON text, or the path of a file that exists" % (
                config, os.path.abspath(path), os.getcwd())) from None
    return {"source": text, "file": path}


def _config_error_text(err, from_dict):
    """The message of a sweep config the server refused (``422``). For a config passed as a
    dict, each error by its key path, said to be in the config passed to
    :meth:`Sweep.create` (the JSON text the server parsed is nobody's file; warnings are
    left out: they did not refuse it); for text, the server's message, with positions."""
    payload = err.payload if isinstance(err.payload, dict) else {}
    errors = [d for d in payload.get("diagnostics") or []
              if isinstance(d, dict) and d.get("severity", "error") == "error"]
    if not from_dict or not errors:
        return _error_text(err)
    lines = []
    for d in errors:
        line = "  %s: %s" % (d.get("path") or "(the root)", d.get("message") or json.dumps(d))
        if d.get("hint"):
            line += "\n    hint: %s" % d["hint"]
        lines.append(line)
    return "hyperdial: %d error%s in the config passed to Sweep.create:\n%s" % (
        len(errors), "" if len(errors) == 1 else "s", "\n".join(lines))


# --------------------------------------------------------------------------------------------
# Finding a server for a Sweep, or starting a local one

_local = None  # the _LocalServer this process started, if any
_local_lock = threading.Lock()


def _answers(transport, seconds):
    """Whether anything answers HTTP at the transport's server within ``seconds`` (connection
    refusals are tried again meanwhile: a server may be starting). An HTTP error or a TLS
    failure counts as an answer: the call that follows says what is wrong."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        try:
            transport.request("GET", "/api/v1/sweeps?project=hyperdial-probe",
                              timeout=max(0.05, min(_PROBE_TIMEOUT, left)))
            return True
        except _SendError as err:
            if err.status is not None or not err.retryable:
                return True
        if deadline - time.monotonic() <= 0.1:
            return False
        time.sleep(0.1)


def _hyperdial_binary():
    """The ``hyperdial`` executable: ``HYPERDIAL_BIN``, else the one on ``PATH``; or None."""
    named = _env("HYPERDIAL_BIN")
    if named is not None:
        return named if os.path.isfile(named) and os.access(named, os.X_OK) else None
    return shutil.which("hyperdial")


class _LocalServer:
    """``hyperdial server`` started by this process on a free loopback port and the default
    store (``HYPERDIAL_DB``, else ``./.hyperdial/hyperdial.db``), as ``hyperdial tune`` does.

    Its standard input is a pipe of this process, and it is started with
    ``--until-stdin-closes``: it shuts down (cleanly) when this process ends, however that
    happens, and no sooner (it is in a session of its own, so a terminal's Ctrl-C does not stop
    it under the open trials)."""

    def __init__(self, binary):
        self._log = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [binary, "server", "--bind", "127.0.0.1:0", "--until-stdin-closes"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                start_new_session=True)
        except OSError as err:
            raise RuntimeError("hyperdial: cannot start %s server: %s" % (binary, err)) from None
        first = self._first_line()
        # "hyperdial server on http://127.0.0.1:PORT (database sqlite://...)"
        words = first.split()
        if len(words) < 4 or words[:3] != ["hyperdial", "server", "on"]:
            self.stop()
            raise RuntimeError("hyperdial: the local server did not start: %s"
                               % (first.strip() or self._log_tail() or "no output"))
        self.url = words[3]
        self.database = first.partition("(database ")[2].rstrip(")\n ") or "?"
        threading.Thread(target=self._drain, name="hyperdial-local-server",
                         daemon=True).start()

    def _first_line(self):
        deadline = time.monotonic() + _LOCAL_START_SECONDS
        out = self.proc.stdout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                break
            byte = os.read(out.fileno(), 1)
            if not byte:
                break
            line += byte
        return line.decode("utf-8", "replace")

    def _drain(self):
        try:
            while os.read(self.proc.stdout.fileno(), 4096):
                pass
        except OSError:
            pass

    def _log_tail(self):
        try:
            self._log.seek(0)
            return self._log.read().decode("utf-8", "replace").strip()[-2000:]
        except (OSError, ValueError):
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self, wait=10.0):
        """Close its standard input (it shuts down cleanly), wait, then kill it if need be."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self._log):
            try:
                f.close()
            except OSError:
                pass


def _local_store_hint(server):
    """When ``server`` is the local server this process started: which store it serves and
    how to read another (for a "not found" message); else ""."""
    local = _local
    if local is None or local.url.rstrip("/") != server.rstrip("/"):
        return ""
    return (" (the local server this process started on the store %s, since no server was "
            "named and none answered at %s: name the server that holds the run with "
            "server= or HYPERDIAL_SERVER, or run from the directory holding its store)"
            % (local.database, DEFAULT_SERVER))


def _stop_local():
    """Stop the local server this process started, if any (also run at exit)."""
    global _local
    with _local_lock:
        local, _local = _local, None
    if local is not None:
        local.stop()


def _start_command(url):
    """The command that starts a server answering at ``url``, quoted for a message:
    `hyperdial server` for the default address, with ``--bind`` for another loopback
    address, and for another host the command to run on it (``--bind 0.0.0.0:PORT``, with a
    token, since other machines can reach it)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number: say it in general terms
        return "`hyperdial server --bind HOST:PORT`"
    if url.rstrip("/") == DEFAULT_SERVER:
        return "`hyperdial server`"
    if host in _LOOPBACK or host.startswith("127."):
        bind = "%s:%d" % ("127.0.0.1" if host == "localhost" else
                          "[::1]" if host == "::1" else host, port)
        return "`hyperdial server --bind %s`" % bind
    return ("`hyperdial server --bind 0.0.0.0:%d --token TOKEN` on %s (and HYPERDIAL_TOKEN="
            "TOKEN here)" % (port, host))


def _sweep_server(server, token):
    """The base URL a :class:`Sweep` talks to, with a server answering there: ``server``, else
    ``HYPERDIAL_SERVER``, else :data:`DEFAULT_SERVER`; when none was named and nothing answers
    at the default address, a local server this process starts (:class:`_LocalServer`).
    A named server that does not answer within ``_CONNECT_SECONDS`` raises RuntimeError with
    the command that starts one."""
    global _local
    named = server or _env("HYPERDIAL_SERVER")
    url = _server_from(named)
    if not named:
        with _local_lock:
            if _local is not None and _local.alive():
                return _local.url
    if _answers(_Transport(url, token), _CONNECT_SECONDS if named else _PROBE_TIMEOUT):
        return url
    if named:
        raise RuntimeError(
            "hyperdial: no server answers at %s. Start one there with %s, or leave "
            "the server unset (no server= and no HYPERDIAL_SERVER) to have this process start "
            "a local one" % (url, _start_command(url)))
    binary = _hyperdial_binary()
    if binary is None:
        raise RuntimeError(
            "hyperdial: no server answers at %s, and no `hyperdial` binary was found to start "
            "a local one (on PATH, or named by HYPERDIAL_BIN). Run `hyperdial server` in the "
            "directory whose .hyperdial/ should keep the sweeps, or set HYPERDIAL_SERVER to a "
            "running server" % url)
    with _local_lock:
        if _local is None or not _local.alive():
            _local = _LocalServer(binary)
            _warn("no server at %s: started a local one at %s on %s (dashboard %s/); it stops "
                  "when this process exits (`hyperdial server` shows the sweeps later)"
                  % (url, _local.url, _local.database, _local.url))
        return _local.url


atexit.register(_stop_local)


def _finite_or_none(value, what):
    """A told or reported value of objective ``what`` as a float, None for None, NaN and the
    infinities; TypeError naming it and what was given for anything else."""
    if value is None:
        return None
    try:
        v = _metric_value(what, value)
    except TypeError:
        raise TypeError("hyperdial: the value for %r is not a number: got %s (an int, float, "
                        "bool or a numpy/torch scalar is)" % (what, _told_repr(value))) from None
    return None if v is None else float(v)


def _told_repr(value):
    """``value`` for a message: its type and its repr, cut to 60 characters."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return "%s %s" % (type(value).__name__, text)


def _user_stacklevel():
    """The ``stacklevel`` of a ``warnings.warn`` call made in this module that makes the
    warning point at the first frame outside it (the user's line), however deep the call."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and _is_own_frame(frame):
        frame = frame.f_back
        level += 1
    return level


def _is_own_frame(frame):
    """Whether ``frame`` runs code of this package or of its W&B-compatible module (the
    ``wandb`` module that imports this one as ``_hd``)."""
    module = frame.f_globals.get("__name__") or ""
    if module == __name__ or module.startswith(__name__ + "."):
        return True
    return module == "wandb" and frame.f_globals.get("_hd") is sys.modules.get(__name__)


class HyperdialWarning(UserWarning):
    """The base of the warnings this package emits with :func:`warnings.warn` (filter them
    with ``warnings.filterwarnings("ignore", category=hyperdial.HyperdialWarning)``)."""


class ConfigWarning(HyperdialWarning):
    """A warning about a sweep config: one the server gave when :meth:`Sweep.create` stored
    it (``log_uniform`` bounds that look like values, ...), or the client's own (a sweep
    without a metric cannot take told values)."""


class ValueWarning(HyperdialWarning):
    """A value :meth:`Sweep.tell` could not store (not a number, or not every objective):
    the trial ended ``failed``."""


class QueryWarning(HyperdialWarning):
    """A read whose answer is probably not what was meant: an ``order`` on a field no run
    has (:meth:`Api.runs`, :meth:`Sweep.best_run`)."""


class NoMetricError(ValueError):
    """A value told to a sweep that has no ``metric`` (add ``metric: {name, goal}`` to the
    sweep's config). The trial it was told for has been ended ``failed``."""


class TrialPruned(Exception):
    """Raised by an objective run by :meth:`Sweep.optimize` to end its trial early (Optuna's
    ``TrialPruned``): the trial is told ``stopped_early`` and keeps the best value it reported
    with :meth:`Trial.report`; the loop goes on with the next trial."""


class Trial(_HistoryReader):
    """One suggestion of a sweep, to be evaluated by the caller and told back; also any run
    read back from the server (:meth:`Sweep.trial`, :meth:`Sweep.trials`, :meth:`Api.run`).

    Made by :meth:`Sweep.ask`. Attributes:

    * ``id`` -- the run's id; ``number`` -- its number in the sweep (1, 2, ...);
    * ``params`` -- the suggested values, flat with dotted names (``{"optimizer.lr": 0.01}``);
    * ``config`` -- the same values nested, as a :class:`Config` (``trial.config.optimizer.lr``);
      for a run outside a sweep, the config its script gave;
    * ``suggestion`` -- how the server chose it (strategy, seed, diagnostics);
    * ``state`` -- ``"running"`` until told, then the state the server gave the run;
    * ``value`` -- the run's metric: the best value of the sweep metric it reported or was
      told, as the server keeps it (for a multi-objective sweep, the dict told);
    * ``summary`` -- the run's summary as the server last sent it (a dict: the last value of
      each metric, overlaid by the values set in ``run.summary``);
    * ``sweep`` -- the :class:`Sweep` (None for a run outside any sweep); ``sweep_id``,
      ``project``, ``name`` -- as the server holds them; ``data`` -- the server's whole
      answer for the run;
    * ``created_at`` -- when the run was created, as W&B writes it (``"2026-11-29T14:03:07Z"``,
      UTC); ``url`` -- its page on the server's dashboard.
    """

    def __init__(self, sweep, run, transport=None):
        self.sweep = sweep
        self._transport = transport if transport is not None else sweep._transport
        self.id = run.get("id")
        self.sweep_id = run.get("sweep")
        self.project = run.get("project")
        self.name = run.get("name")
        self.summary = dict(run.get("summary") or {})
        self.number = run.get("number")
        self.params = dict(run.get("params") or {})
        self.config = Config(run.get("config") or {})
        self.suggestion = run.get("suggestion")
        self.state = run.get("state")
        self.value = run.get("metric")
        self.data = run
        self.created_at = _iso_time(run.get("created_ms"))
        server = getattr(self._transport, "server", None)
        self.url = "%s/runs/%s" % (server, self.id) if server and self.id else None
        self._stop = bool(run.get("stop_requested"))
        self._stop_reason = None
        self._last_contact = time.monotonic()
        # The best value of the sweep metric known of this run: the server's metric when it
        # was read, then each value reported here (a tell sent with the next claim gets no
        # record of the run back, so its value is worked out from this).
        self._best_seen = self.value if isinstance(self.value, (int, float)) else None

    def _update(self, run):
        """Take the server's record of this run (the answer to its finish): state, metric,
        summary and the whole answer."""
        self.data = run
        self.state = run.get("state", self.state)
        self.value = run.get("metric")
        self.summary = dict(run.get("summary") or self.summary)
        if isinstance(self.value, (int, float)):
            self._best_seen = self.value

    def _maximize(self):
        metric = self.sweep.metric if self.sweep is not None else None
        return isinstance(metric, dict) and metric.get("goal") == "maximize"

    def _see(self, value):
        """Count ``value`` (a finite number, or None) among the values of the sweep metric
        this run reached."""
        if value is not None:
            best = self._best_seen
            if best is None or (value > best if self._maximize() else value < best):
                self._best_seen = value

    def _note_value(self, value):
        """Count ``value`` (see :meth:`_see`); ``trial.value`` becomes the best of them, the
        server's rule for a run's metric."""
        self._see(value)
        self.value = self._best_seen

    @property
    def open(self):
        """True until the trial is told (its run has not ended)."""
        return self.state in IN_FLIGHT_RUN_STATES

    def _path(self, action):
        return "/api/v1/runs/%s/%s" % (urllib.parse.quote(self.id, safe=""), action)

    def report(self, value, step=None):
        """Report an intermediate value of the sweep's metric (e.g. after an epoch); for a
        multi-objective sweep, a dict ``{name: number}`` of its objectives (or a list in the
        order of ``metrics``).

        ``step`` defaults to the next step. The server applies the sweep's
        ``early_terminate`` rule to it; :meth:`should_stop` tells whether it asked this trial
        to stop. Returns :meth:`should_stop`.
        """
        if not self.open:
            raise RuntimeError("hyperdial: trial %s was already told (%s)" % (self.id, self.state))
        if self.sweep is None:
            raise RuntimeError("hyperdial: run %s is not a run of a sweep: it has no sweep "
                               "metric to report" % self.id)
        point = {"values": self.sweep._told_values(value)}
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
                raise TypeError("hyperdial: step must be a non-negative integer, got %r" % (step,))
            point["step"] = int(step)
        answer = _call(self._transport, "POST", self._path("metrics"), {"points": [point]})
        self._last_contact = time.monotonic()
        if len(point["values"]) == 1:  # one objective: it counts for the run's metric
            reported = next(iter(point["values"].values()))
            self._see(reported)  # trial.value itself changes when the trial is told
        if isinstance(answer, dict) and answer.get("stop") is True:
            self._stop = True
        return self._stop

    def should_stop(self):
        """True once the server asked this trial to stop (early termination or a cancelled
        sweep): tell it what it reached and move on."""
        return self._stop

    def _history_transport(self):
        return self._transport

    def __repr__(self):
        return "Trial(id=%r, number=%r, params=%r, state=%r)" % (
            self.id, self.number, self.params, self.state)


class _Closable:
    """``close()`` and ``with``: the connections an object keeps open to the server (through
    its ``_transport``) are closed on ``close()`` or on leaving a ``with`` block, as they are
    when it is garbage collected and at exit. It stays usable: the next call connects again.
    A ``Sweep`` read through an ``Api`` shares the Api's connection."""

    def close(self):
        """Close the connections kept open to the server (see the class)."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False


class Sweep(_Closable):
    """A sweep on a hyperdial server, driven by ask/tell instead of agents::

        sweep = hyperdial.Sweep.create({
            "method": "bayes",
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"x": {"min": -5.0, "max": 5.0}},
        })
        for _ in range(30):
            trial = sweep.ask()
            if trial is None:        # the sweep is over (run_cap, target, stopped)
                break
            sweep.tell(trial, (trial.params["x"] - 1) ** 2)
        print(sweep.best().params)

    The server is the ``server`` argument, else ``HYPERDIAL_SERVER``, else
    ``http://127.0.0.1:8337``; ``HYPERDIAL_TOKEN`` is sent as a bearer token when set. When
    neither names a server and none answers at the default address, :meth:`create` and
    :meth:`get` start a local ``hyperdial server`` on the default store
    (``./.hyperdial/hyperdial.db``, or ``HYPERDIAL_DB``), as ``hyperdial tune`` does; it
    stops when this process exits. A named server that does not answer fails within 2 s
    with the command to run.
    """

    #: The class of the runs this sweep gives (:meth:`trials`, :meth:`best`, ...).
    _trial_class = Trial

    def __init__(self, data, server=None, token=None, _transport=None):
        """Use :meth:`create` or :meth:`get`. (``_transport``: the connection of the
        :class:`Api` that read the sweep, shared with it.)"""
        self.server = _server_from(server)
        if _transport is not None and _transport.server == self.server:
            self._transport = _transport
        else:
            self._transport = _Transport(self.server, token if token is not None
                                         else _env("HYPERDIAL_TOKEN"), keep_alive=True)
        self._lock = threading.Lock()
        self._open = {}
        # The request each thread has in flight (see _sent): what optimize() settles after a
        # KeyboardInterrupt that landed inside it.
        self._pending = threading.local()
        self._beat_thread = None
        self._beat_stop = threading.Event()
        self._set(data)

    def _set(self, data):
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise RuntimeError("hyperdial: the server's answer has no sweep id: %r" % (data,))
        self.data = data
        self.id = data["id"]

    @property
    def state(self):
        """``running``, ``paused``, ``finished`` or ``cancelled``, as last seen."""
        return self.data.get("state")

    @property
    def method(self):
        return self.data.get("method")

    @property
    def metric(self):
        """``{"name", "goal"}`` of the sweep's metric, or None."""
        return self.data.get("metric")

    @property
    def config(self):
        """The validated config, as the server holds it."""
        return self.data.get("config")

    @classmethod
    def create(cls, config, server=None, project=None, seed=None, resume=False):
        """Create a sweep and return it.

        ``config`` is the sweep configuration (docs/config.md): a dict, YAML or JSON text, or
        the path of a YAML or JSON file (a ``pathlib.Path``, or a one-line string ending in
        ``.yaml``, ``.yml`` or ``.json``). ``project`` is the project it belongs to (default:
        the config's ``project``, else ``HYPERDIAL_PROJECT``, else the server's default).
        ``seed`` fixes the sweep's seed (random otherwise), so a sweep can be reproduced.
        ``resume=True`` returns an unfinished sweep with the same project and config instead
        of creating one. An invalid config raises ValueError with the server's message: for a
        dict, each mistake named by its key path (``parameters.lr.min``); for text, by its line
        and column in the text as well (``<sweep config text>:3:13: error: ...``); for a file,
        by the file's name, line and column (``sweeps/mnist.yaml:3:13: error: ...``). A file
        that cannot be read raises OSError (FileNotFoundError naming it when it is missing);
        an empty config, ValueError saying so.

        The server's warnings about the config are each emitted as a :class:`ConfigWarning`
        (``warnings.warn``), rendered as the server renders them, except the one saying it
        has no ``program`` (a sweep driven from here needs none); a sweep without a metric
        gets one too, since :meth:`tell` with a value needs a metric.
        """
        if isinstance(config, collections.abc.Mapping):
            # As data: the server names a mistake by its key path, not by a line of a text
            # the caller never wrote.
            body = {"config": _jsonable(config)}
        elif isinstance(config, (str, bytes, os.PathLike)):
            body = _sweep_text(config)
        else:
            raise TypeError("hyperdial: a sweep config is a dict, YAML/JSON text or a file path, "
                            "got %s" % type(config).__name__)
        project = project or _env("HYPERDIAL_PROJECT")
        if project:
            body["project"] = project
        if seed is not None:
            body["seed"] = int(seed)
        if resume:
            body["resume"] = True
        if "source" in body and not body["source"].strip():
            raise ValueError(
                "hyperdial: Sweep.create(%r): the sweep config is empty%s; give a dict, YAML or "
                "JSON text, or the path of a file holding one (docs/config.md)"
                % (config, " (the file %s holds nothing)" % body["file"] if "file" in body
                   else ""))
        sweep = cls({"id": "?"}, server=_sweep_server(server, _env("HYPERDIAL_TOKEN")))
        data = _call(sweep._transport, "POST", "/api/v1/sweeps", body, ok_statuses=(422,))
        if isinstance(data, _SendError):
            raise ValueError(_config_error_text(data, "config" in body)) from None
        sweep._set(data)
        _warn_config(data, body)
        return sweep

    @classmethod
    def get(cls, sweep_id, server=None):
        """The sweep with this id."""
        sweep = cls({"id": sweep_id}, server=_sweep_server(server, _env("HYPERDIAL_TOKEN")))
        sweep.refresh()
        return sweep

    def _path(self, action=""):
        path = "/api/v1/sweeps/" + urllib.parse.quote(self.id, safe="")
        return path + "/" + action if action else path

    def refresh(self):
        """Read the sweep again (state, counts, best); returns self."""
        err = _call(self._transport, "GET", self._path(), ok_statuses=(404,))
        if isinstance(err, _SendError):
            raise KeyError("hyperdial: no sweep %r on %s%s; `hyperdial sweeps --server %s` "
                           "lists its sweeps" % (self.id, self.server,
                                                 _local_store_hint(self.server), self.server))
        self._set(err)
        return self

    def _metric_name(self):
        metric = self.metric
        if not metric:
            self.refresh()
            metric = self.metric
        if not isinstance(metric, dict) or not metric.get("name"):
            raise NoMetricError("hyperdial: sweep %s has no metric, so a value cannot be told: add "
                            "`metric: {name: ..., goal: ...}` to its config (or tell None, "
                            "or a state)" % self.id)
        return metric["name"]

    def objectives(self):
        """The names of the sweep's objectives, in order: several for a multi-objective sweep
        (``metrics:``), else the one metric's name."""
        config = self.data.get("config")
        listed = config.get("metrics") if isinstance(config, dict) else None
        if isinstance(listed, list) and len(listed) > 1:
            return [m["name"] for m in listed]
        return [self._metric_name()]

    def _told_values(self, value):
        """The metric values of a told or reported ``value``, by name: a number for one
        objective; a dict ``{name: number}`` or a list in the objectives' order for several
        (every objective, no other name). NaN and infinities become None."""
        names = self.objectives()
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            missing = [n for n in names if n not in value]
            if unknown or missing:
                raise ValueError("hyperdial: sweep %s has the objectives %s; got %s"
                                 % (self.id, ", ".join(names), ", ".join(map(str, value))))
            return {n: _finite_or_none(value[n], n) for n in names}
        if isinstance(value, (list, tuple)):
            if len(value) != len(names):
                raise ValueError("hyperdial: sweep %s has %d objectives (%s); got %d values"
                                 % (self.id, len(names), ", ".join(names), len(value)))
            return {n: _finite_or_none(v, n) for n, v in zip(names, value)}
        if len(names) > 1:
            raise TypeError("hyperdial: sweep %s has several objectives (%s): tell a dict "
                            "{name: value} or a list in that order" % (self.id, ", ".join(names)))
        return {names[0]: _finite_or_none(value, names[0])}

    def ask(self, timeout=None):
        """The next trial to evaluate (a :class:`Trial`), or None when the sweep is over.

        While nothing can start now (the sweep is paused, or ``run_cap`` is reached with
        trials still open) it waits, for at most ``timeout`` seconds (default 300), then
        raises TimeoutError: each claim asks the server to hold it open for up to 20 s and
        answer as soon as a trial can start or the sweep ends (a long poll); a server that
        answers at once (one without the long poll) is asked again with backoff.
        """
        timeout = _ASK_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        delay = _ASK_BACKOFF[0]
        while True:
            # Long poll: the server may hold the claim open until a trial can start or the
            # sweep ends; a server that does not know wait_ms answers at once.
            wait = min(_ASK_WAIT, max(0.0, deadline - time.monotonic()))
            body = {"wait_ms": int(wait * 1000)} if wait >= 0.001 else {}
            # One key per claim, the same on each of _call's retries of it: a claim whose
            # answer was lost (the server stored the trial, then the connection dropped) gets
            # that trial again instead of a second one.
            body["claim_key"] = _claim_key()
            headers = {}
            with self._sent(("claim", body)):
                answer = _call(self._transport, "POST", self._path("claim"), body,
                               ok_statuses=(410,), timeout=_REQUEST_TIMEOUT + wait,
                               headers_out=headers)
            if isinstance(answer, _SendError):
                if isinstance(answer.payload, dict) and answer.payload.get("state"):
                    self.data["state"] = answer.payload["state"]
                return None
            if isinstance(answer, dict) and isinstance(answer.get("run"), dict):
                trial = Trial(self, answer["run"])
                with self._lock:
                    self._open[trial.id] = trial
                self._start_heartbeats()
                return trial
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(
                    "hyperdial: sweep %s had no trial to start for %.0f s (paused, or run_cap "
                    "reached with trials still open: tell them first)" % (self.id, timeout))
            if _WAITED_HEADER in headers:
                continue  # the server waited for us: ask again at once
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, _ASK_BACKOFF[1])

    def tell(self, trial, value, state=None, _then=None, _refused=None):
        """Tell the value a trial reached; this ends the trial. Returns the trial.

        ``value`` is the sweep metric's value (a number; ``goal: maximize`` is handled by the
        server); for a multi-objective sweep (``metrics:`` with several entries) a dict
        ``{name: number}`` with every objective, or a list in the order of ``metrics``, and
        ``trial.value`` becomes that dict. ``None``, NaN (in any objective) or
        ``state="failed"`` mark the trial failed: the search counts it through
        ``metric.impute``. ``state`` may also be ``"crashed"`` or ``"stopped_early"``; by
        default it is ``finished``, or ``stopped_early`` when the server had asked the trial
        to stop (``cancelled`` when that was a cancelled sweep).

        Afterwards ``trial.state`` and ``trial.value`` are the server's: the value is the
        run's metric, the best of the values the trial reported (:meth:`Trial.report`) and
        the one told, as for any run (``goal`` decides which is best).

        A value that is not a number (a string, an object; for several objectives, a dict or
        list that does not give each once) ends the trial ``failed``, its error saying what
        was given, and warns (a :class:`ValueWarning`), as Optuna's ``tell`` does; the trial
        is returned.
        Raises, before anything is sent and leaving the trial open: TypeError when ``trial``
        is not a :class:`Trial`, ValueError when it belongs to another sweep or ``state`` is
        not one of ``finished``, ``failed``, ``crashed``, ``stopped_early``, ``cancelled``,
        RuntimeError when it was already told. A value told to a sweep without a metric
        ends the trial ``failed`` ("the sweep has no metric") and raises ValueError.

        A trial ended in a state the sweep's ``retry`` rule lists comes back: the next
        :meth:`ask` gives its configuration again (``trial.data["retry_of"]`` names the
        first). By default that is ``crashed``, once per configuration; ``retry: {max: 0}``
        in the config turns it off (docs/python.md, "Which trials come back").
        """
        if not isinstance(trial, Trial):
            raise TypeError("hyperdial: tell() takes a Trial from ask(), got %s"
                            % type(trial).__name__)
        if trial.sweep_id != self.id:
            raise ValueError(
                "hyperdial: trial %s (run %s) belongs to %s, not to sweep %s: tell it to the "
                "sweep that gave it (nothing was sent)" % (
                    trial.number, trial.id,
                    "sweep %s" % trial.sweep_id if trial.sweep_id else "no sweep", self.id))
        if state is not None and state not in TERMINAL_RUN_STATES:
            raise ValueError("hyperdial: unknown trial state %r: a trial ends in one of %s "
                             "(nothing was sent; trial %s is still open)"
                             % (state, ", ".join(TERMINAL_RUN_STATES), trial.id))
        if not trial.open:
            raise RuntimeError("hyperdial: trial %s was already told (%s)"
                               % (trial.id, trial.state))
        number = told = None
        body = {"exit_code": 0}
        refusal = None
        if value is not None:
            try:
                values = self._told_values(value)
            except NoMetricError as err:
                # Nothing can be stored: end the trial failed (else it stays running until
                # the run timeout crashes it and the retry rule runs it again), then raise.
                self._fail(trial, str(err).replace("hyperdial: ", "", 1))
                raise
            except (TypeError, ValueError) as err:
                refusal = str(err).replace("hyperdial: ", "", 1)
                values = None
                state = RunState.FAILED
            if values is not None:
                told = values if len(values) > 1 else None
                # The run fails unless every objective is a finite number.
                number = None if None in values.values() else next(iter(values.values()))
                # The value travels with the finish: one request, stored in one transaction.
                body["values"] = values
        if number is None and state in (None, RunState.FINISHED):
            state = RunState.FAILED
        if state is None and trial._stop:
            # The server asked the trial to stop: say it stopped (else it counts as finished).
            state = (RunState.CANCELLED if trial._stop_reason == "cancelled"
                     else RunState.STOPPED_EARLY)
        if state is not None:
            body["state"] = state
            if state == RunState.FAILED:
                body["exit_code"] = 1
                body["error"] = ("no value told" if value is None
                                 else "the value told was refused: " + refusal
                                 if refusal is not None
                                 else "the value told is not a finite number")[:2000]
        if refusal is not None:
            message = ("trial %s of sweep %s %s ends failed: the value told was refused: %s"
                       % (trial.number, self.id, trial.params, refusal))
            if _refused is not None:
                _refused(message)
            else:
                warnings.warn("hyperdial: " + message, ValueWarning,
                              stacklevel=_user_stacklevel())
        if _then is None:
            with self._sent(("finish", trial, body)):
                answer = _call(self._transport, "POST", trial._path("finish"), body)
        else:  # tell_and_ask: the finish travels with the next claim
            _then.append(self._claim_telling(trial, body))
            answer = None
        with self._lock:
            self._open.pop(trial.id, None)
        if isinstance(answer, dict) and answer.get("id") == trial.id:
            # The server's record of the ended run: its state, and its metric (the best of
            # what the trial reported and the value told), not the argument.
            trial._update(answer)
        else:
            # No record came back (a claim's answer is the next trial): the same rule here.
            trial.state = state or RunState.FINISHED
            trial._note_value(number)
            if isinstance(answer, dict):
                trial.data = answer
        if told is not None:
            trial.value = told
        return trial

    def _fail(self, trial, reason):
        """End ``trial`` ``failed`` with ``reason`` as its error (one finish request)."""
        body = {"exit_code": 1, "state": RunState.FAILED, "error": reason[:2000]}
        with self._sent(("finish", trial, body)):
            answer = _call(self._transport, "POST", trial._path("finish"), body)
        with self._lock:
            self._open.pop(trial.id, None)
        if isinstance(answer, dict) and answer.get("id") == trial.id:
            trial._update(answer)
        else:
            trial.state = RunState.FAILED

    def tell_and_ask(self, trial, value, state=None, timeout=None, _refused=None):
        """Tell a trial its value and ask for the next one in one request: what
        ``tell(trial, value, state)`` then ``ask(timeout)`` do, with one round trip to the
        server instead of two. The told value is stored (and durable) before the next trial is
        chosen, so a model-based search sees it. Returns the next :class:`Trial`, or None when
        the sweep is over. The told trial is ended as :meth:`tell` ends it; its ``state`` is
        the one sent, and its ``value`` the best of its metric's values known here (its
        metric when read, its reports through this object, the value told): the server's
        rule, since the claim's answer does not repeat the told run."""
        then = []
        self.tell(trial, value, state, _then=then, _refused=_refused)
        answer, headers = then[0]
        if isinstance(answer, _SendError):
            if isinstance(answer.payload, dict) and answer.payload.get("state"):
                self.data["state"] = answer.payload["state"]
            return None
        if isinstance(answer, dict) and isinstance(answer.get("run"), dict):
            return self._opened(answer["run"])
        return self.ask(timeout)  # nothing could start at once: wait as ask() does

    def optimize(self, objective, n_trials=None, timeout=None, catch=(), callbacks=()):
        """Evaluate ``objective(trial)`` on the sweep's trials, one after another, and tell
        each value back (Optuna's ``study.optimize``).

        ``objective`` takes a :class:`Trial` and returns what :meth:`tell` takes: a number
        (the sweep's metric; ``goal: maximize`` is handled by the server), a dict or list for
        a multi-objective sweep, or None for a failed trial. It may call
        :meth:`Trial.report` to report intermediate values and raise :class:`TrialPruned`
        when :meth:`Trial.should_stop` says so: the trial then ends ``stopped_early``.

        Each trial after the first is told and the next one claimed in one request
        (:meth:`tell_and_ask`), so a trial costs one round trip; every told value is stored
        (and, by default, on disk) before the next trial is chosen.

        The loop ends when ``n_trials`` trials were told (counting this call's only), when
        ``timeout`` seconds have passed (checked before each new trial; a trial in progress
        is finished), or when the sweep is over (``run_cap``, a finite space done, a
        target or budget reached, ``stop``). With neither ``n_trials`` nor ``timeout`` it
        runs until the sweep is over, which for an unbounded ``random`` or ``bayes`` sweep
        means until interrupted.

        An exception raised by ``objective`` ends its trial ``failed`` (the error's text is
        stored with the run) and, when it is an instance of a class in ``catch``, the loop
        goes on; otherwise it is raised again after the trial is told. ``KeyboardInterrupt``
        (Ctrl-C), wherever it lands, ends the trial in progress ``cancelled`` and is raised
        again: a request it cut short is sent again first (a tell is then stored, a trial it
        claimed is cancelled too), so no trial is left open to crash later. A value
        :meth:`tell` would refuse (not a number, or not every objective) fails the trial and
        the loop goes on, as in Optuna; such failures and those caught by ``catch`` are
        reported on standard error with the trial's parameters, one line per trial. A value
        returned to a sweep without a metric fails its trial and raises ValueError. After
        each told trial (but not one whose exception is raised again) every ``callbacks``
        item is called as ``callback(sweep, trial)``. A trial's ``value`` is its metric: the
        best of the values it reported and the one returned, as for any run.

        Returns the number of trials told. Raises ValueError for a negative ``n_trials`` or
        ``timeout``, TypeError for a ``catch`` that is not exception classes.
        """
        if n_trials is not None and (isinstance(n_trials, bool) or int(n_trials) != n_trials
                                     or n_trials < 0):
            raise ValueError("hyperdial: n_trials must be a non-negative integer or None, got %r"
                             % (n_trials,))
        if timeout is not None and not timeout >= 0:
            raise ValueError("hyperdial: timeout must be a non-negative number of seconds or "
                             "None, got %r" % (timeout,))
        catch = tuple(catch) if isinstance(catch, (list, tuple, set)) else (catch,)
        if not all(isinstance(c, type) and issubclass(c, BaseException) for c in catch):
            raise TypeError("hyperdial: catch takes exception classes, got %r" % (catch,))
        callbacks = list(callbacks or ())
        deadline = None if timeout is None else time.monotonic() + timeout

        def wanted(told):
            if n_trials is not None and told >= n_trials:
                return False
            return deadline is None or time.monotonic() < deadline

        told = 0
        if not wanted(told):
            return told
        trial = None
        try:
            trial = self.ask()
            while trial is not None:
                value, state, error = None, None, None
                try:
                    value = objective(trial)
                except TrialPruned:
                    state = RunState.STOPPED_EARLY
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:
                    self._tell_error(trial, exc)
                    told += 1
                    if not isinstance(exc, catch) or not isinstance(exc, Exception):
                        raise
                    error = exc
                    _warn("trial %s of sweep %s failed with %s: %s: %s (caught; going on)" % (
                        trial.number, self.id, trial.params, type(exc).__name__, exc))
                    for callback in callbacks:
                        callback(self, trial)
                if error is None:
                    told += 1
                    try:
                        # A value tell() refuses (not a number) fails the trial and the loop
                        # goes on (Optuna's rule), said on standard error for each trial.
                        if wanted(told):
                            next_trial = self.tell_and_ask(trial, value, state, _refused=_warn)
                        else:
                            self.tell(trial, value, state, _refused=_warn)
                            next_trial = None
                    except RuntimeError as err:
                        raise RuntimeError(
                            "%s\nhyperdial: trial %s of sweep %s (%s) returned %r, which was "
                            "not stored; once the server is back the trial ends crashed, and "
                            "is run again as `retry` says (once, by default)"
                            % (err, trial.number, self.id, trial.params, value)) from None
                    for callback in callbacks:
                        callback(self, trial)
                    trial = next_trial
                else:
                    trial = self.ask() if wanted(told) else None
        except KeyboardInterrupt:
            self._settle_interrupted(trial)
            raise
        return told

    def _tell_error(self, trial, exc):
        """End ``trial`` failed because its objective raised ``exc``, with the error's text."""
        text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
        self._fail(trial, text)

    def _claim_telling(self, trial, finish):
        """The claim of :meth:`tell_and_ask`, ending ``trial`` with ``finish`` first: the
        answer (a dict, a 410 _SendError, or None for a 204) and its headers."""
        headers = {}
        body = {"wait_ms": int(_ASK_WAIT * 1000), "tell": {"run": trial.id, "finish": finish},
                "claim_key": _claim_key()}
        with self._sent(("claim", body)):
            answer = _call(self._transport, "POST", self._path("claim"), body,
                           ok_statuses=(410,), timeout=_REQUEST_TIMEOUT + _ASK_WAIT,
                           headers_out=headers)
        return answer, headers

    @contextlib.contextmanager
    def _sent(self, request):
        """Mark ``request`` as this thread's request in flight while the block runs:
        ``("claim", body)`` or ``("finish", trial, body)``. It stays marked when the block is
        left by a KeyboardInterrupt, for :meth:`_settle_interrupted`."""
        self._pending.request = request
        try:
            yield
        except KeyboardInterrupt:
            raise
        except BaseException:
            self._pending.request = None
            raise
        self._pending.request = None

    def _settle_interrupted(self, trial):
        """After a KeyboardInterrupt in :meth:`optimize`: leave no trial of this thread open.

        A request the interrupt cut short may have reached the server, which then stored it
        (a claim's new trial, a tell) while its answer was lost. It is sent again: a claim
        with the same ``claim_key`` gets the trial it made, or makes one, and a finish is
        stored once however often it is sent. The trial that claim hands out, and ``trial``
        (the one being evaluated) if it is still open, end ``cancelled``. Best effort: a
        failure here is reported on standard error, and the interrupt goes on either way."""
        request = getattr(self._pending, "request", None)
        self._pending.request = None
        try:
            if request is not None and request[0] == "claim":
                body = dict(request[1], wait_ms=0)
                answer = _call(self._transport, "POST", self._path("claim"), body,
                               ok_statuses=(410,))
                if isinstance(answer, dict) and isinstance(answer.get("run"), dict):
                    self.tell(Trial(self, answer["run"]), None, state=RunState.CANCELLED)
                if "tell" in body and trial is not None:
                    with self._lock:
                        self._open.pop(trial.id, None)
                    trial.state = body["tell"]["finish"].get("state", RunState.FINISHED)
                    trial = None
            elif request is not None and request[0] == "finish":
                _call(self._transport, "POST", request[1]._path("finish"), request[2])
                with self._lock:
                    self._open.pop(request[1].id, None)
                if request[1] is trial:
                    trial = None
            if trial is not None and trial.open:
                self.tell(trial, None, state=RunState.CANCELLED)
        except Exception as err:  # noqa: BLE001 - the interrupt matters more
            _warn("after the interrupt, sweep %s may have a trial left open (%s); it ends "
                  "crashed once the server's run timeout passes" % (self.id, err))

    def _opened(self, run):
        """A claimed run as an open :class:`Trial` (heartbeats start)."""
        trial = Trial(self, run)
        with self._lock:
            self._open[trial.id] = trial
        self._start_heartbeats()
        return trial

    def best(self):
        """The best trial so far (a :class:`Trial` whose ``value`` is its metric), or None;
        None for a multi-objective sweep, which has a front instead
        (``GET /api/v1/sweeps/{id}/front``)."""
        answer = _call(self._transport, "GET", self._path("best"), ok_statuses=(404, 409))
        if isinstance(answer, _SendError) or not isinstance(answer, dict):
            return None
        run = answer.get("run")
        return self._trial_class(self, run) if isinstance(run, dict) else None

    def trials(self):
        """Every trial (run) of the sweep so far, by number. Raises KeyError when the server
        has no such sweep."""
        runs = _all_runs(self._transport, [("sweep", self.id)])
        return [self._trial_class(self, r)
                for r in sorted(runs, key=lambda r: r.get("number") or 0)]

    @property
    def runs(self):
        """Every run of the sweep so far, by number: :meth:`trials` under W&B's name
        (``sweep.runs`` of ``wandb.Api().sweep(path)``); read anew at each access."""
        return self.trials()

    @property
    def name(self):
        """The config's ``name``, else the sweep's id (as W&B names a sweep)."""
        return self.data.get("name") or self.id

    @property
    def project(self):
        """The project the sweep belongs to."""
        return self.data.get("project")

    def best_run(self, order=None):
        """The best run of the sweep (W&B's ``sweep.best_run(order=None)``), or None when it
        has none.

        Without ``order``, the sweep's metric decides: :meth:`best` (the best ``finished``
        or ``stopped_early`` run; None for a multi-objective sweep); a sweep without a metric
        gives its most recent run, saying so on standard error, as W&B does (None, said too,
        when it has no run yet). With ``order`` (W&B's form:
        ``"-summary_metrics.acc"``, ``"+config.lr"``, ``"+created_at"``; a bare name is
        ``"-summary_metrics.NAME"``), the first of every run sorted so, runs without the
        value last (see :meth:`Api.runs`)."""
        if order is None:
            metric = self.metric
            if isinstance(metric, dict) and metric.get("name"):
                return self.best()
            runs = _sorted_runs([t.data for t in self.trials()], "-created_at")
            if not runs:
                _warn("sweep %s has no metric to find its best run by, and no run yet: "
                      "best_run() returns None" % self.id)
                return None
            _warn("sweep %s has no metric to find its best run by (best_run() was given no "
                  "order): returning its most recent run, %s (number %s)"
                  % (self.id, runs[0].get("id"), runs[0].get("number")))
            return self._trial_class(self, runs[0])
        runs = _sorted_runs([t.data for t in self.trials()], order)
        return self._trial_class(self, runs[0]) if runs else None

    def trial(self, run_id):
        """The trial (run) of this sweep with id ``run_id``, as :meth:`trials` gives it; its
        :meth:`~Trial.history` reads what it logged. Raises KeyError when the server has no
        such run, or it belongs to another sweep."""
        answer = _call(self._transport, "GET", "/api/v1/runs/%s?history=false"
                       % urllib.parse.quote(run_id, safe=""), ok_statuses=(404,))
        if isinstance(answer, _SendError) or not isinstance(answer, dict):
            raise KeyError("hyperdial: no run %r on %s" % (run_id, self.server))
        if answer.get("sweep") != self.id:
            raise KeyError("hyperdial: run %r belongs to %s, not to sweep %s" % (
                run_id, "sweep %s" % answer["sweep"] if answer.get("sweep") else "no sweep",
                self.id))
        return self._trial_class(self, answer)

    def stop(self):
        """Hand out no more trials (the state becomes ``finished``); returns self."""
        self._set(_call(self._transport, "POST", self._path("stop"), {}))
        return self

    # A run claimed without an agent is marked crashed after 60 s of silence: while trials
    # are open, a daemon thread sends a heartbeat for each one that was quiet for a while.

    def _start_heartbeats(self):
        with self._lock:
            if self._beat_thread is not None and self._beat_thread.is_alive():
                return
            self._beat_thread = threading.Thread(target=self._beat_main,
                                                 name="hyperdial-trials", daemon=True)
            self._beat_thread.start()

    def _beat_main(self):
        try:
            self._beat_loop()
        finally:
            # This thread's kept connection (made by a heartbeat) ends with it.
            self._transport._drop_connection()

    def _beat_loop(self):
        while not self._beat_stop.wait(min(1.0, _TRIAL_HEARTBEAT / 4)):
            with self._lock:
                trials = list(self._open.values())
                if not trials:
                    self._beat_thread = None
                    return
            now = time.monotonic()
            for trial in trials:
                if now - trial._last_contact < _TRIAL_HEARTBEAT or not trial.open:
                    continue
                try:
                    answer = self._transport.request("POST", trial._path("heartbeat"), {})
                except _SendError:
                    continue
                trial._last_contact = time.monotonic()
                if isinstance(answer, dict) and answer.get("stop") is True:
                    trial._stop_reason = answer.get("reason")
                    trial._stop = True

    def __repr__(self):
        return "Sweep(id=%r, method=%r, state=%r, server=%r)" % (
            self.id, self.method, self.state, self.server)


def _last_segment(path, what):
    """The id at the end of a W&B-style path (``"entity/project/id"``, ``"project/id"``,
    ``"entity/project/runs/id"``, or a bare ``"id"``): the other parts are ignored (ids are
    unique on a hyperdial server, which has no entities)."""
    if not isinstance(path, str):
        raise TypeError("hyperdial: a %s id is a string, got %r" % (what, path))
    if not path.strip("/ "):
        raise ValueError("hyperdial: a %s id is a non-empty string, got %r" % (what, path))
    return path.strip("/ ").rsplit("/", 1)[-1]


def _project_of(path):
    """The project of a W&B project path given to :meth:`Api.runs`: ``"entity/project"`` or
    ``"project"`` (the entity is ignored), None for every project. A longer path names no
    project (W&B's ``runs()`` takes none): ValueError saying what to pass instead."""
    if path is None:
        return None
    if not isinstance(path, str):
        raise TypeError("hyperdial: Api.runs(path): a project path is a string, got %r"
                        % (path,))
    parts = [p for p in path.strip().strip("/").split("/") if p]
    if not parts:
        return None
    if len(parts) > 2:
        raise ValueError(
            "hyperdial: Api.runs(%r): the path of runs is a project, \"entity/project\" or "
            "\"project\", not %d parts; for the runs of sweep %r pass filters=%r (or read "
            "api.sweep(%r).runs), and for one run api.run(%r)"
            % (path, len(parts), parts[-1], {"sweep": parts[-1]}, path, path))
    return parts[-1]


def _all_runs(transport, params):
    """Every run ``GET /api/v1/runs`` lists with the query ``params`` (a list of pairs), read
    a page of 100,000 at a time. A ``sweep`` that does not exist raises KeyError naming it,
    the server, and how to list the sweeps."""
    runs = []
    while True:
        query = urllib.parse.urlencode(list(params) + [("limit", 100000),
                                                       ("offset", len(runs))])
        answer = _call(transport, "GET", "/api/v1/runs?" + query, ok_statuses=(404,))
        if isinstance(answer, _SendError):
            sweep = dict(params).get("sweep")
            raise KeyError(
                "hyperdial: no sweep %r on %s%s; `hyperdial sweeps --server %s` lists its "
                "sweeps" % (sweep, transport.server, _local_store_hint(transport.server),
                            transport.server))
        page = (answer or {}).get("runs") or []
        runs.extend(page)
        if not page or len(runs) >= int((answer or {}).get("total") or 0):
            return runs


def _iso_time(ms):
    """Milliseconds since the epoch as W&B writes a time (``2026-11-29T14:03:07Z``, UTC);
    None stays None."""
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000.0))


_MISSING = object()  # a run field that has no value

#: The run fields :meth:`Api.runs` filters and sorts on (W&B's names), besides ``config.KEY``
#: and ``summary_metrics.KEY``.
_RUN_FIELDS = ("sweep", "state", "display_name", "name", "project", "created_at",
               "createdAt", "tags", "group", "jobType", "job_type")


def _lookup(flat, nested, key):
    """``key`` (dotted) in a run's flat values (``params``, a summary), else down the nested
    mapping; a W&B-style trailing ``.value`` (``config.lr.value``) is the value itself."""
    for name in (key, key[:-len(".value")] if key.endswith(".value") else None):
        if name is None:
            continue
        if isinstance(flat, dict) and name in flat:
            return flat[name]
        node = nested
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                node = _MISSING
                break
            node = node[part]
        if node is not _MISSING:
            return node
    return _MISSING


def _run_field(run, field):
    """The value of W&B filter/order field ``field`` for ``run`` (a run as the server sends
    it), or ``_MISSING``."""
    if field.startswith("config."):
        return _lookup(run.get("params"), run.get("config"), field[len("config."):])
    if field.startswith("summary_metrics."):
        summary = run.get("summary")
        return _lookup(summary, summary, field[len("summary_metrics."):])
    value = {
        "sweep": run.get("sweep"),
        "state": run.get("state"),
        "display_name": run.get("name") or run.get("id"),
        "name": run.get("id"),  # W&B's `name` filter is the run's id
        "project": run.get("project"),
        "created_at": _iso_time(run.get("created_ms")),
        "createdAt": _iso_time(run.get("created_ms")),
        "tags": [],
    }.get(field, _MISSING)
    return value


def _check_field(field):
    if not isinstance(field, str) or not (
            field in _RUN_FIELDS or field.startswith(("config.", "summary_metrics."))):
        raise ValueError(
            "hyperdial: Api.runs: unknown run field %r in filters or order; use %s, "
            "config.KEY or summary_metrics.KEY" % (field, ", ".join(_RUN_FIELDS)))


def _comparable(a, b):
    """Whether ``a < b`` means something in a filter: two numbers, two strings or two
    booleans (never a number and a string, which MongoDB does not compare either)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numbers.Real) and isinstance(b, numbers.Real)) or \
        (isinstance(a, str) and isinstance(b, str))


def _equal(value, wanted):
    if value is _MISSING:
        return wanted is None
    if isinstance(value, list) and not isinstance(wanted, list):
        return wanted in value
    return value == wanted


def _operator(op, arg):
    """A test ``f(value)`` for one operator of a W&B (MongoDB-style) filter."""
    def ordered(test):
        return lambda v: v is not _MISSING and _comparable(v, arg) and test(v, arg)

    if op == "$eq":
        return lambda v: _equal(v, arg)
    if op == "$ne":
        return lambda v: not _equal(v, arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return ordered({"$gt": lambda v, a: v > a, "$gte": lambda v, a: v >= a,
                        "$lt": lambda v, a: v < a, "$lte": lambda v, a: v <= a}[op])
    if op in ("$in", "$nin"):
        if not isinstance(arg, (list, tuple, set)):
            raise ValueError("hyperdial: Api.runs: %s takes a list, got %r" % (op, arg))
        inside = lambda v: any(_equal(v, a) for a in arg)  # noqa: E731
        return inside if op == "$in" else (lambda v: not inside(v))
    if op == "$exists":
        return lambda v: (v is not _MISSING and v is not None) == bool(arg)
    if op == "$regex":
        pattern = re.compile(str(arg))
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if op == "$not":
        inner = _condition(arg)
        return lambda v: not inner(v)
    raise ValueError("hyperdial: Api.runs: unknown filter operator %r; use $eq, $ne, $gt, $gte, "
                     "$lt, $lte, $in, $nin, $exists, $regex, $not, $and, $or, $nor" % (op,))


def _condition(spec):
    """A test ``f(value)`` for the condition on one field: ``{"$op": arg, ...}`` (all must
    hold), or a value it must equal."""
    if isinstance(spec, dict) and spec and all(isinstance(k, str) and k.startswith("$")
                                               for k in spec):
        tests = [_operator(op, arg) for op, arg in spec.items()]
        return lambda v: all(t(v) for t in tests)
    return lambda v: _equal(v, spec)


#: W&B's run states that hyperdial does not have, and what stands for each here.
_WANDB_STATES = {
    "killed": "`cancelled` (stopped by hand, or its sweep was cancelled) or `stopped_early` "
              "(stopped by the sweep's early_terminate rule)",
    "preempted": "`crashed` (its process or machine went away; the retry rule runs it again)",
    "preempting": "`crashed` (its process or machine went away; the retry rule runs it again)",
    "pending": "`queued`",
}


def _check_state(word):
    """ValueError unless ``word`` (a value a ``state`` filter compares with) is one of
    hyperdial's run states: a filter on a word no run can have would match nothing (or, with
    ``$ne``, everything) without a word."""
    if not isinstance(word, str) or word in RUN_STATES:
        return
    lowered = word.strip().lower()
    if lowered in RUN_STATES:
        hint = "; states are lower case: %r" % lowered
    elif lowered in _WANDB_STATES:
        hint = "; W&B's %r is %s here" % (lowered, _WANDB_STATES[lowered])
    else:
        close = difflib.get_close_matches(lowered, RUN_STATES, n=1)
        hint = " (did you mean %r?)" % close[0] if close else ""
    raise ValueError("hyperdial: Api.runs: no run is ever in state %r: hyperdial's run states "
                     "are %s%s" % (word, ", ".join(RUN_STATES), hint))


def _check_states(spec):
    """Check every state word of a ``state`` filter (a value, or operators on values)."""
    if isinstance(spec, dict) and spec and all(isinstance(k, str) and k.startswith("$")
                                               for k in spec):
        for op, arg in spec.items():
            if op in ("$in", "$nin") and isinstance(arg, (list, tuple, set)):
                for word in arg:
                    _check_state(word)
            elif op in ("$eq", "$ne"):
                _check_state(arg)
            elif op == "$not":
                _check_states(arg)
        return
    _check_state(spec)


def _run_filter(filters):
    """A test ``f(run)`` for W&B's ``filters`` (a MongoDB-style dict: fields, ``$and``,
    ``$or``, ``$nor``); an unknown field or operator raises ValueError."""
    if filters is None:
        return lambda run: True
    if not isinstance(filters, collections.abc.Mapping):
        raise TypeError("hyperdial: Api.runs: filters is a dict, got %s"
                        % type(filters).__name__)
    tests = []
    for key, spec in filters.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(spec, (list, tuple)):
                raise ValueError("hyperdial: Api.runs: %s takes a list of filters" % key)
            parts = [_run_filter(f) for f in spec]
            if key == "$and":
                tests.append(lambda run, parts=parts: all(p(run) for p in parts))
            elif key == "$or":
                tests.append(lambda run, parts=parts: any(p(run) for p in parts))
            else:
                tests.append(lambda run, parts=parts: not any(p(run) for p in parts))
            continue
        if isinstance(key, str) and key.startswith("$"):
            raise ValueError("hyperdial: Api.runs: %r is not an operator on runs; use $and, "
                             "$or, $nor, or a field" % (key,))
        _check_field(key)
        if key == "state":
            _check_states(spec)
        test = _condition(spec)
        tests.append(lambda run, key=key, test=test: test(_run_field(run, key)))
    return lambda run: all(t(run) for t in tests)


def _pushed_sweep(filters):
    """The sweep id ``filters`` requires (``{"sweep": ID}``, also inside a top-level
    ``$and``), which the server then filters on (and answers 404 for), or None."""
    if not isinstance(filters, collections.abc.Mapping):
        return None
    if isinstance(filters.get("sweep"), str):
        return filters["sweep"]
    if isinstance(filters.get("sweep"), dict) and isinstance(filters["sweep"].get("$eq"), str) \
            and len(filters["sweep"]) == 1:
        return filters["sweep"]["$eq"]
    for part in filters.get("$and") or ():
        found = _pushed_sweep(part)
        if found is not None:
            return found
    return None


def _order_key(order):
    """W&B's ``order`` (``"+created_at"``, ``"-summary_metrics.acc"``, ``"config.lr"``) as
    (field, descending). A name without a sign is descending, a bare metric name is
    ``summary_metrics.NAME`` (W&B's rules)."""
    if not isinstance(order, str) or not order.strip("+- "):
        raise ValueError("hyperdial: an order is a field with + or - before it "
                         "(\"-summary_metrics.acc\"), got %r" % (order,))
    order = order.strip()
    descending = not order.startswith("+")
    field = order.lstrip("+-")
    if field not in _RUN_FIELDS and not field.startswith(("config.", "summary_metrics.")):
        field = "summary_metrics." + field
    return field, descending


def _dotted_keys(value, prefix, out):
    """Every key path of a nested mapping (``{"opt": {"lr": 1}}``: ``opt``, ``opt.lr``)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            name = prefix + str(key)
            out.add(name)
            _dotted_keys(inner, name + ".", out)
    return out


def _warn_unknown_order(runs, field, order):
    """Warn (a :class:`QueryWarning`) when no run of ``runs`` has ``field``, the
    ``config.KEY`` or ``summary_metrics.KEY`` that ``order`` sorts by: the order is then the
    server's, which a misspelt name should not leave unsaid. Names the closest field the runs
    have, as a history read does for a misspelt key, and their fields."""
    if not runs or not field.startswith(("config.", "summary_metrics.")):
        return
    if any(_run_field(run, field) is not _MISSING for run in runs):
        return
    known = set()
    for run in runs:
        known |= {"config." + k for k in _dotted_keys(run.get("config"), "", set())}
        known |= {"config." + str(k) for k in run.get("params") or {}}
        known |= {"summary_metrics." + k for k in _dotted_keys(run.get("summary"), "", set())}
    known = sorted(known)
    # The closest name is looked for among the keys without their kind (the shared prefix
    # would make any two summary metrics look alike), of either kind, this one's first.
    kind, _, key = field.partition(".")
    by_key = {}
    for name in sorted(known, key=lambda n: not n.startswith(kind + ".")):
        by_key.setdefault(name.partition(".")[2], name)
    close = difflib.get_close_matches(key, list(by_key), n=1)
    warnings.warn(
        "hyperdial: no run has %s, which order=%r sorts by, so the runs are in the server's "
        "order%s; %s" % (
            field, order, " (did you mean %r?)" % by_key[close[0]] if close else "",
            "their fields are " + _listed(known) if known else "they have no config or "
            "summary values"),
        QueryWarning, stacklevel=_user_stacklevel())


def _sorted_runs(runs, order):
    """``runs`` (as the server sends them) sorted by W&B's ``order``: numbers before text,
    runs without the value last whichever the direction; a stable sort, so ties keep the
    server's order."""
    if order is None:
        return list(runs)
    field, descending = _order_key(order)
    _warn_unknown_order(runs, field, order)
    numeric, text, absent = [], [], []
    for run in runs:
        if field in ("created_at", "createdAt"):
            # By the millisecond (then the number), not by the whole seconds of created_at.
            value = run.get("created_ms")
            value = _MISSING if value is None else (value, run.get("number") or 0)
        else:
            value = _run_field(run, field)
        if isinstance(value, bool) or value is _MISSING or value is None or value != value:
            absent.append(run)
        elif isinstance(value, str):
            text.append((value, run))
        elif isinstance(value, (numbers.Real, tuple)):
            numeric.append((value, run))
        else:  # a list or a mapping: nothing to order by
            absent.append(run)
    numeric.sort(key=lambda p: p[0], reverse=descending)
    text.sort(key=lambda p: p[0], reverse=descending)
    return [r for _, r in numeric] + [r for _, r in text] + absent


class Api(_Closable):
    """Read runs and sweeps back from a server, from any process: what
    ``wandb.Api()`` does for W&B::

        api = hyperdial.Api()                      # or Api(server="http://host:8337")
        run = api.run("r3kq9x2ab")                 # or "entity/project/r3kq9x2ab"
        print(run.state, run.config, run.summary)
        rows = run.history(keys=["loss"])          # or run.scan_history(), see Trial
        sweep = api.sweep("k3x9q2ab")              # the same as Sweep.get()
        done = api.runs("mnist", filters={"sweep": sweep.id, "state": "finished"},
                        order="-summary_metrics.acc")

    The server is ``server``, else ``HYPERDIAL_SERVER``, else ``http://127.0.0.1:8337``;
    ``token`` (default ``HYPERDIAL_TOKEN``) is sent as a bearer token. When neither names a
    server and none answers at the default address, a local server is started on the default
    store (``./.hyperdial/hyperdial.db``, or ``HYPERDIAL_DB``), as for :class:`Sweep`, so the
    runs of this directory can be read without starting one. The W&B-compatible module's
    ``wandb.Api`` is this class, with W&B's defaults for ``run.history()``.
    """

    #: The class of the runs this Api gives; the W&B-compatible module's gives its own.
    _trial_class = Trial
    #: The class of the sweeps this Api gives.
    _sweep_class = Sweep

    def __init__(self, server=None, token=None):
        self.token = token if token is not None else _env("HYPERDIAL_TOKEN")
        self.server = _sweep_server(server, self.token)
        self._transport = _Transport(self.server, self.token, keep_alive=True)
        self._sweeps = {}  # sweep id -> Sweep, shared by the runs read through this Api

    def _sweep_of(self, sweep_id):
        """The :class:`Sweep` of a run (read once per Api), or None when there is none."""
        if not isinstance(sweep_id, str):
            return None
        sweep = self._sweeps.get(sweep_id)
        if sweep is None:
            try:
                sweep = self._sweeps[sweep_id] = self.sweep(sweep_id)
            except KeyError:  # deleted since: the run is still read, trial.sweep_id says
                sweep = None
        return sweep

    def run(self, path):
        """The run with this id, in or outside a sweep: a :class:`Trial` (as
        :meth:`Sweep.trial` gives), with ``state``, ``config``, ``summary``, ``history()``
        and ``scan_history()``; its ``sweep`` is the run's :class:`Sweep`, or None. ``path``
        is the run id, or a W&B path ``"entity/project/run_id"``, whose entity and project
        are ignored. Raises KeyError naming the id and the server when the server has no
        such run."""
        run_id = _last_segment(path, "run")
        answer = _call(self._transport, "GET", "/api/v1/runs/%s?history=false"
                       % urllib.parse.quote(run_id, safe=""), ok_statuses=(404,))
        if isinstance(answer, _SendError) or not isinstance(answer, dict):
            raise KeyError("hyperdial: no run %r on %s%s" % (run_id, self.server,
                                                            _local_store_hint(self.server)))
        return self._trial_class(self._sweep_of(answer.get("sweep")), answer,
                                 transport=self._transport)

    def runs(self, path=None, filters=None, order="+created_at", per_page=None,
             include_sweeps=True, **kwargs):
        """The runs of a project that match ``filters``, sorted by ``order``: W&B's
        ``api.runs(path, filters=, order=)``, as a list of :class:`Trial` (each with its
        ``sweep``).

        ``path`` is ``"entity/project"`` or ``"project"`` (the entity is ignored), or None
        for every project; a longer path raises ValueError saying what to pass instead.
        ``filters`` is W&B's MongoDB-style dict on the fields ``sweep``, ``state``,
        ``display_name``, ``name`` (the run id, as in W&B), ``project``, ``created_at``
        (``"2026-11-29T14:03:07Z"``), ``tags`` (always empty here), ``config.KEY`` and
        ``summary_metrics.KEY`` (dotted keys reach nested values), with ``$eq``, ``$ne``,
        ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``, ``$exists``, ``$regex``,
        ``$not`` and ``$and``, ``$or``, ``$nor``; an unknown field or operator raises
        ValueError. A ``sweep`` the server does not have raises KeyError naming it (rather
        than matching nothing). ``order`` is W&B's ``"+field"`` or ``"-field"`` (default
        ``"+created_at"``, oldest first; a bare metric name means
        ``"-summary_metrics.NAME"``); runs without the value come last. A ``state`` compared
        with a word no run can have (a typo, W&B's ``killed``) raises ValueError listing
        hyperdial's states; an ``order`` on a ``config.KEY`` or ``summary_metrics.KEY`` that
        no run has warns (:class:`QueryWarning`) with the closest key. ``group``,
        ``jobType`` and ``job_type`` are always empty. ``per_page`` and
        ``include_sweeps`` are accepted and change nothing: every matching run is read (in
        pages of 100,000).
        """
        params = []
        project = _project_of(path)
        if project is not None:
            params.append(("project", project))
        sweep_id = _pushed_sweep(filters)
        if sweep_id is not None:
            params.append(("sweep", sweep_id))
        test = _run_filter(filters)
        if order is not None:
            _check_field(_order_key(order)[0])
        found = _sorted_runs([r for r in _all_runs(self._transport, params) if test(r)], order)
        return [self._trial_class(self._sweep_of(r.get("sweep")), r, transport=self._transport)
                for r in found]

    def sweep(self, path):
        """The sweep with this id (a :class:`Sweep`, as :meth:`Sweep.get` gives). ``path``
        is the sweep id, or a W&B path ``"entity/project/sweep_id"`` (entity and project
        ignored). Raises KeyError naming the id and the server when there is no such
        sweep."""
        sweep = self._sweep_class({"id": _last_segment(path, "sweep")}, server=self.server,
                                  token=self.token, _transport=self._transport)
        return sweep.refresh()

    def __repr__(self):
        return "Api(server=%r)" % (self.server,)


# --------------------------------------------------------------------------------------------
# The LR range test

#: The summary key that marks a run as an LR range test (its value: :meth:`LRRangeTest.result`).
LR_RANGE_SUMMARY_KEY = "lr_range_test"

_LR_RANGE_MIN_POINTS = 5  # points the suggestion needs after the skips


def lr_range_schedule(min_lr, max_lr, steps):
    """The learning rates of an LR range test: ``steps`` values rising exponentially (evenly on
    a log scale) from ``min_lr`` to ``max_lr``, both included: ``min_lr *
    (max_lr / min_lr) ** (i / (steps - 1))`` for step ``i``. ``steps`` is at least 2;
    ``0 < min_lr < max_lr``, else ``ValueError``."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 2:
        raise ValueError("hyperdial.lr_range_test: steps must be an integer >= 2, got %r" % (steps,))
    min_lr, max_lr = float(min_lr), float(max_lr)
    if not (math.isfinite(min_lr) and math.isfinite(max_lr) and 0.0 < min_lr < max_lr):
        raise ValueError(
            "hyperdial.lr_range_test: need 0 < min_lr < max_lr, got min_lr=%r max_lr=%r"
            % (min_lr, max_lr))
    ratio = max_lr / min_lr
    rates = [min_lr * ratio ** (i / (steps - 1)) for i in range(steps)]
    rates[-1] = max_lr
    return rates


def smooth_losses(losses, beta=0.98):
    """Exponentially smoothed losses with bias correction: ``avg = beta * avg + (1 - beta) *
    loss`` from ``avg = 0``, and the smoothed value at step ``i`` (from 0) is ``avg / (1 -
    beta ** (i + 1))``, so the first one is the first loss. A non-finite loss makes it and every
    later smoothed value NaN."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * float(loss)
        out.append(avg / (1.0 - beta ** (i + 1)) if math.isfinite(avg) else float("nan"))
    return out


def lr_range_suggestion(lrs, smoothed, skip_start=10, skip_end=5):
    """The suggestion of an LR range test from its learning rates and smoothed losses.

    Only the points from index ``skip_start`` to ``len - skip_end`` (exclusive) are looked at
    (the first losses are the noisiest relative to how little they move; the last ones are
    where the loss blows up), and only finite ones. Returns a dict:

    * ``min_loss_lr``: the learning rate of the lowest smoothed loss, and
      ``tenth_min_loss_lr``, a tenth of it;
    * ``steepest_lr``: where the smoothed loss falls fastest against log(lr), the slope taken
      between the points ``k`` places either side (``k`` is a twentieth of the points looked
      at, at least 1), which keeps step-to-step noise from picking the point;
    * ``suggested_lr``: ``tenth_min_loss_lr`` (the rule, ``"tenth_min_loss"``; docs/python.md
      gives the measurements behind the choice).

    All are None when fewer than 5 points are left (``reason`` then says why, else it is None).
    """
    end = len(lrs) - skip_end
    window = [i for i in range(max(skip_start, 0), end)
              if math.isfinite(smoothed[i]) and lrs[i] > 0]
    result = {"suggested_lr": None, "steepest_lr": None, "min_loss_lr": None,
              "tenth_min_loss_lr": None, "reason": None}
    if len(window) < _LR_RANGE_MIN_POINTS:
        result["reason"] = (
            "%d points are left after leaving out the first %d and the last %d; the suggestion "
            "needs %d: run more steps, or a wider range" % (
                len(window), skip_start, skip_end, _LR_RANGE_MIN_POINTS))
        return result
    best = min(window, key=lambda i: smoothed[i])
    span = max(1, len(window) // 20)
    steepest, steepest_slope = None, None
    for j in range(span, len(window) - span):
        a, i, b = window[j - span], window[j], window[j + span]
        slope = (smoothed[b] - smoothed[a]) / (math.log(lrs[b]) - math.log(lrs[a]))
        if steepest_slope is None or slope < steepest_slope:
            steepest, steepest_slope = i, slope
    result["steepest_lr"] = lrs[steepest]
    result["min_loss_lr"] = lrs[best]
    result["tenth_min_loss_lr"] = lrs[best] / 10.0
    result["suggested_lr"] = result["tenth_min_loss_lr"]
    return result


class LRRangeTest:
    """An LR range test driving one training loop; made by :func:`lr_range_test`.

    Iterating gives the learning rate of each step; after each step the loop calls
    :meth:`record` with that step's training loss. Iteration ends after the last step, or
    early when the loss diverges (see :meth:`record`); then :meth:`finish` runs by itself.
    """

    def __init__(self, min_lr, max_lr, steps, run=None, beta=0.98, diverge_factor=4.0,
                 skip_start=10, skip_end=5):
        """See :func:`lr_range_test`."""
        self.schedule = lr_range_schedule(min_lr, max_lr, steps)
        beta, diverge_factor = float(beta), float(diverge_factor)
        if not 0.0 <= beta < 1.0:
            raise ValueError("hyperdial.lr_range_test: beta must be in [0, 1), got %r" % beta)
        if not (math.isfinite(diverge_factor) and diverge_factor > 1.0):
            raise ValueError(
                "hyperdial.lr_range_test: diverge_factor must be above 1, got %r" % diverge_factor)
        for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(
                    "hyperdial.lr_range_test: %s must be an integer >= 0, got %r" % (name, value))
        self.run = run
        self.beta = beta
        self.diverge_factor = diverge_factor
        self.skip_start = int(skip_start)
        self.skip_end = int(skip_end)
        #: The learning rates of the steps recorded so far.
        self.lrs = []
        #: The raw losses recorded (NaN for a non-finite one).
        self.losses = []
        #: The smoothed losses (see :func:`smooth_losses`).
        self.smoothed = []
        #: Why the test ended: None while it runs, else ``"completed"`` (every step ran),
        #: ``"diverged"`` (the smoothed loss passed ``diverge_factor`` times its minimum),
        #: ``"non_finite"`` (a loss was NaN or infinite) or ``"ended"`` (:meth:`finish` was
        #: called before either).
        self.stop = None
        #: The learning rate of the step that stopped the test (``"diverged"`` or
        #: ``"non_finite"``), else None.
        self.divergence_lr = None
        self._avg = 0.0
        self._best = math.inf
        self._pending = None  # the lr handed out and not recorded yet
        self._result = None

    def __iter__(self):
        return self

    def __next__(self):
        if self._pending is not None:
            raise RuntimeError(
                "hyperdial.lr_range_test: call record(loss) once for each learning rate")
        if self.stop is None and len(self.lrs) >= len(self.schedule):
            self.stop = "completed"
        if self.stop is not None:
            self.finish()
            raise StopIteration
        self._pending = self.schedule[len(self.lrs)]
        return self._pending

    @property
    def lr(self):
        """The learning rate handed out last (the one :meth:`record` expects a loss for)."""
        return self._pending if self._pending is not None else (self.lrs[-1] if self.lrs else None)

    def record(self, loss):
        """Record the training loss of the step just run at :attr:`lr`; return True when the
        test should stop (and then iteration ends).

        The point is logged to the run as ``lr``, ``loss`` and ``loss_smoothed``. The test
        stops when the loss is not finite, or when the smoothed loss is above
        ``diverge_factor`` times the lowest smoothed loss so far (fastai's rule, factor 4)."""
        if self._pending is None:
            raise RuntimeError(
                "hyperdial.lr_range_test: record() comes after taking a learning rate from the test")
        loss = _metric_value("loss", loss)
        loss = float("nan") if loss is None else float(loss)
        lr, self._pending = self._pending, None
        i = len(self.lrs)
        smoothed = float("nan")
        if math.isfinite(loss) and math.isfinite(self._avg):
            self._avg = self.beta * self._avg + (1.0 - self.beta) * loss
            smoothed = self._avg / (1.0 - self.beta ** (i + 1))
        else:
            self._avg = float("nan")
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        if self.run is not None:
            self.run.log({"lr": lr, "loss": loss, "loss_smoothed": smoothed})
        if not math.isfinite(smoothed):
            self.stop, self.divergence_lr = "non_finite", lr
        elif smoothed > self.diverge_factor * self._best:
            self.stop, self.divergence_lr = "diverged", lr
        self._best = min(self._best, smoothed) if math.isfinite(smoothed) else self._best
        return self.stop is not None

    def result(self):
        """The test's outcome as a dict (what :meth:`finish` stores in the summary): the
        settings (``min_lr``, ``max_lr``, ``steps``, ``beta``, ``diverge_factor``,
        ``skip_start``, ``skip_end``), ``points`` recorded, ``stop``, ``divergence_lr``, and
        the keys of :func:`lr_range_suggestion` (``rule`` names the one suggested:
        ``"tenth_min_loss"``)."""
        out = {
            "min_lr": self.schedule[0], "max_lr": self.schedule[-1], "steps": len(self.schedule),
            "beta": self.beta, "diverge_factor": self.diverge_factor,
            "skip_start": self.skip_start, "skip_end": self.skip_end,
            "points": len(self.lrs), "stop": self.stop, "divergence_lr": self.divergence_lr,
            "rule": "tenth_min_loss",
        }
        out.update(lr_range_suggestion(self.lrs, self.smoothed, self.skip_start, self.skip_end))
        return out

    @property
    def suggested_lr(self):
        """The suggested learning rate (None while too few points were recorded)."""
        return self.result()["suggested_lr"]

    def finish(self):
        """End the test (``stop`` becomes ``"ended"`` if it was still running) and store
        :meth:`result` in the run's summary under ``lr_range_test``, the key that marks the
        run as an LR range test. Returns :meth:`result`. Calling it again stores nothing new."""
        if self._result is None:
            self._pending = None
            if self.stop is None:
                self.stop = "completed" if len(self.lrs) >= len(self.schedule) else "ended"
            self._result = self.result()
            if self.run is not None:
                self.run.summary[LR_RANGE_SUMMARY_KEY] = self._result
        return self._result

    def __repr__(self):
        return "LRRangeTest(points=%d/%d, stop=%r)" % (len(self.lrs), len(self.schedule), self.stop)


def lr_range_test(min_lr=1e-7, max_lr=10.0, steps=100, run=None, beta=0.98, diverge_factor=4.0,
                  skip_start=10, skip_end=5):
    """Start an LR range test (Smith 2017, "Cyclical Learning Rates for Training Neural
    Networks", section 3.3): one short training run whose learning rate rises exponentially
    from ``min_lr`` to ``max_lr`` over ``steps`` steps while the loss is recorded.

    Returns an :class:`LRRangeTest`; use it as::

        test = hyperdial.lr_range_test(1e-5, 10.0, steps=200)
        for lr in test:
            loss = train_one_batch(lr)
            test.record(loss)
        print(test.suggested_lr)

    ``run`` is the run to log to (default: the current run of :func:`init`; with none, nothing
    is logged). ``beta`` smooths the loss (:func:`smooth_losses`); the test stops when the
    smoothed loss passes ``diverge_factor`` times its minimum, or at a non-finite loss.
    ``skip_start`` and ``skip_end`` points are left out of the suggestion
    (:func:`lr_range_suggestion`). ``ValueError`` for settings out of range.
    """
    return LRRangeTest(min_lr, max_lr, steps, run=run if run is not None else globals()["run"],
                       beta=beta, diverge_factor=diverge_factor, skip_start=skip_start,
                       skip_end=skip_end)


# --------------------------------------------------------------------------------------------
# init and the module-level conveniences


def _env(name, default=None):
    value = os.environ.get(name, "")
    return value if value.strip() else default


def _git_info():
    """{"commit", "dirty"} of the git work tree holding the cwd (else the program), or None."""
    dirs = [os.getcwd()]
    program = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if program and os.path.isfile(program):
        program_dir = os.path.dirname(os.path.abspath(program))
        if program_dir not in dirs:
            dirs.append(program_dir)
    for directory in dirs:
        try:
            head = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=directory, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=_GIT_TIMEOUT,
            )
        except (OSError, subprocess.SubprocessError):
            return None  # no git on this machine
        if head.returncode != 0:
            continue
        commit = head.stdout.decode("utf-8", "replace").strip()
        dirty = None
        try:
            status = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                timeout=_GIT_TIMEOUT,
            )
            if status.returncode == 0:
                dirty = bool(status.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
        return {"commit": commit, "dirty": dirty}
    return None


def _read_sweep_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        _warn("cannot read the run's config %s (%s); using the defaults" % (path, err))
        return {}
    if not isinstance(data, dict):
        _warn("the run's config %s is not a JSON object; using the defaults" % path)
        return {}
    return data


def _spill_file(directory, run_id, server):
    """The spill file of this process for ``run_id``: ``<dir>/<run>.py<pid>.jsonl``, in
    ``directory`` or else ``$HYPERDIAL_DIR/offline``."""
    if not directory:
        directory = os.path.join(_env("HYPERDIAL_DIR", ".hyperdial"), "offline")
    name = "%s.py%d.jsonl" % (run_id.replace("/", "_"), os.getpid())
    return _SpillFile(os.path.join(os.path.abspath(directory), name), run_id, server)


def _local_id():
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


_stop_callbacks = []
_terminating = False
_sigterm_installed = False


def _install_sigterm_handler():
    """On SIGTERM: remember it, run the ``on_stop`` callbacks, send what is buffered, exit 143.

    Installed only from the main thread and only over the default disposition, so a script's
    own handler always wins.
    """
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):
        return
    _sigterm_installed = True


def _on_sigterm(signum, frame):
    global _terminating
    if _terminating:
        return
    _terminating = True
    for callback in list(_stop_callbacks):
        try:
            callback()
        except Exception as err:  # a failing callback must not keep the process alive
            _warn("on_stop callback failed: %r" % (err,))
    with _active_lock:
        runs = list(_active_runs)
    for r in runs:
        if r._pid == os.getpid():
            r.finish(exit_code=128 + signum)
    sys.exit(128 + signum)


def _install_hooks():
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        global _uncaught_exception
        _uncaught_exception = True
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook


def _at_exit():
    with _active_lock:
        runs = list(_active_runs)
    for r in runs:
        if r._pid == os.getpid():
            r.finish(exit_code=1 if _uncaught_exception else 0)


def _forget(r):
    global run
    with _active_lock:
        if r in _active_runs:
            _active_runs.remove(r)
    if r.mode == "agent" and r.id:
        _agent_next_step[r.id] = r._step
    if run is r:
        run = None


def init(config=None, project=None, name=None, mode=None):
    """Start a run and return it (a :class:`Run`).

    ``config`` holds the script's defaults: a dict, possibly nested, or an
    ``argparse.Namespace``. Under an agent the sweep's values (the JSON file named by
    ``HYPERDIAL_CONFIG``) are merged over it, nested mappings key by key, and the result is
    ``run.config``. ``project`` and ``name`` label a run created outside a sweep; ``project``
    defaults to ``HYPERDIAL_PROJECT`` or ``"default"``.

    ``mode`` overrides ``HYPERDIAL_MODE``: ``"auto"`` (default: agent when
    ``HYPERDIAL_RUN_ID`` is set, else server when one answers, else offline), ``"offline"``
    or ``"disabled"`` (nothing is sent or written). A run still open from an earlier ``init``
    is finished first. The new run is also available as ``hyperdial.run``, its config as
    ``hyperdial.config`` and its summary as ``hyperdial.summary``.
    """
    config_arg = config
    if config_arg is None:
        defaults = {}
    elif isinstance(config_arg, collections.abc.Mapping):
        defaults = config_arg
    elif hasattr(config_arg, "__dict__"):  # argparse.Namespace and the like
        defaults = vars(config_arg)
    else:
        raise TypeError(
            "hyperdial.init: config must be a dict or an argparse.Namespace, got %s"
            % type(config_arg).__name__
        )
    if run is not None and not run.finished:
        run.finish()

    merged = Config(defaults)
    config_path = _env("HYPERDIAL_CONFIG")
    sweep_values = _read_sweep_config(config_path) if config_path else {}
    if sweep_values:
        merged = _deep_merge(merged, sweep_values)

    mode_arg = mode
    mode = (mode or _env("HYPERDIAL_MODE", "auto")).strip().lower()
    if mode not in ("auto", "offline", "disabled"):
        _warn("unknown HYPERDIAL_MODE %r; using auto" % mode)
        mode = "auto"
    project = project or _env("HYPERDIAL_PROJECT", "default")
    server = _env("HYPERDIAL_SERVER", DEFAULT_SERVER).strip().rstrip("/")
    if "://" not in server:
        server = "http://" + server
    token = _env("HYPERDIAL_TOKEN")
    run_id = _env("HYPERDIAL_RUN_ID")

    new_run = None
    if mode == "disabled":
        # A local id, as for an offline run (W&B gives a disabled run an id too), so
        # messages can name the run.
        new_run = Run("disabled", merged, project, name, _local_id(), None, _NullSink())
        new_run._disabled_reason = (
            'mode="disabled" was passed to hyperdial.init(); leave it out (or pass '
            'mode="auto") to record the run' if mode_arg else
            "HYPERDIAL_MODE=disabled is set; unset it (or set it to auto) to record the run")
    elif mode == "auto" and run_id:
        transport = _Transport(server, token)
        # The agent names the directory and uploads (or reports) what lands there when the
        # process has ended; without it, this process reports what it spilled.
        agent_spill_dir = _env("HYPERDIAL_SPILL_DIR")
        new_run = Run(
            "agent", merged, project, name, run_id, _env("HYPERDIAL_SWEEP_ID"),
            _HTTPSink(transport, run_id, finish_run=False, heartbeat=False),
            server=server, first_step=_agent_next_step.get(run_id, 0),
            spill=_spill_file(agent_spill_dir, run_id, server),
            report_delivery=not agent_spill_dir,
        )
    else:
        record = {
            "project": project,
            "name": name,
            "config": _jsonable(merged),
            "argv": [str(a) for a in sys.argv],
            "host": socket.gethostname(),
            "git": _git_info(),
        }
        offline_reason = "HYPERDIAL_MODE=offline" if mode == "offline" else None
        if mode == "auto":
            transport = _Transport(server, token)
            created = None
            try:
                transport.request(
                    "GET", "/api/v1/sweeps?project=" + urllib.parse.quote(project, safe=""),
                    timeout=_PROBE_TIMEOUT,
                )
                body = {k: v for k, v in record.items() if v is not None}
                created = transport.request("POST", "/api/v1/runs", body)
            except _SendError as err:
                offline_reason = str(err)
            if created is not None:
                if isinstance(created, dict) and isinstance(created.get("id"), str):
                    new_run = Run(
                        "server", merged, project, name, created["id"], created.get("sweep"),
                        _HTTPSink(transport, created["id"], finish_run=True, heartbeat=True),
                        server=server, spill=_spill_file(None, created["id"], server),
                        report_delivery=True,
                    )
                else:
                    offline_reason = "the server's answer to POST /api/v1/runs has no run id"
            elif offline_reason is None:
                offline_reason = "the server's answer to POST /api/v1/runs has no run id"
        if new_run is None:
            local_id = _local_id()
            directory = os.path.abspath(_env("HYPERDIAL_DIR", ".hyperdial"))
            path = os.path.join(directory, "offline", local_id + ".jsonl")
            init_record = {"type": "init"}
            init_record.update(record)
            init_record["time_ms"] = _now_ms()
            try:
                sink = _OfflineSink(path, init_record)
            except (OSError, _SendError) as err:
                _warn("cannot write offline run %s (%s); metrics are not recorded" % (path, err))
                new_run = Run("disabled", merged, project, name, local_id, None, _NullSink())
                new_run._disabled_reason = (
                    "it was to be logged offline (%s), but its offline file %s could not be "
                    "written (%s); make HYPERDIAL_DIR writable, or start a server "
                    "(`hyperdial server`), to record the next run" % (offline_reason, path, err))
            else:
                _warn(
                    "offline (%s): logging to %s; upload it later with `hyperdial sync`"
                    % (offline_reason, path)
                )
                new_run = Run("offline", merged, project, name, local_id, None, sink, path=path)

    new_run._sweep_values = sweep_values
    if new_run.mode == "agent" and defaults:
        # Store the script's defaults with the run, beside the sweep's values (as W&B does).
        new_run._send_config(defaults)
    if new_run.mode == "agent" and name:
        # The agent (or `hyperdial run`) created the run before the script named it.
        new_run._send_name(name)
    _install_hooks()
    if new_run.mode == "agent":
        # An agent stops a run with SIGTERM: send the buffered points before exiting.
        _install_sigterm_handler()
    with _active_lock:
        _active_runs.append(new_run)
    _set_current(new_run)
    return new_run


def _set_current(r):
    global run, config, summary
    run = r
    config = r.config
    summary = r.summary


def log(data, step=None):
    """Log metric values to the current run; see :meth:`Run.log`."""
    if run is None:
        raise RuntimeError("hyperdial.log() called before hyperdial.init()")
    run.log(data, step=step)


def finish(exit_code=0):
    """Finish the current run (see :meth:`Run.finish`); does nothing when there is none."""
    if run is not None:
        run.finish(exit_code=exit_code)
