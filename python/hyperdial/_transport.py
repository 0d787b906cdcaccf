"""JSON over HTTP(S) to one server: the connections, TLS, retries of the ask/tell calls, and
the text of the server's errors.

A :class:`_Transport` raises :class:`_SendError` for every failure, saying whether a retry
may cure it (no connection, timeout, 5xx, 408, 429) or not (another 4xx, a certificate that
does not verify), and whether the server refused the token (401, 403: ``auth``). An ``https://`` server is verified against the system's certificate
authorities plus the PEM file named by ``HYPERDIAL_CA_CERT``. With ``keep_alive`` each thread
keeps one connection open; every kept connection is closed at interpreter exit.
:func:`_call` is one call of the ask/tell and read APIs: retried while the server is away (for
the retry window, ``HYPERDIAL_RETRY_SECONDS`` or 60 s), turned into ValueError or RuntimeError
with the server's message otherwise.
"""

import atexit
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref

from . import _settings
from ._errors import _warn


#: The statuses of a refused token: no retry with the same token helps, but the data is fine.
_AUTH_STATUSES = (401, 403)


class _SendError(Exception):
    def __init__(self, message, retryable, status=None, payload=None, timed_out=False):
        super().__init__(message)
        self.retryable = retryable
        self.status = status  # the HTTP status, when the server answered
        self.payload = payload  # the server's decoded JSON error body, when there is one
        # no answer within the request's timeout (the server may be up, waiting on something)
        self.timed_out = timed_out

    @property
    def auth(self):
        """True when the server refused the token (401, 403): a run's points are then kept in
        its spill file for ``hyperdial sync`` with a token the server accepts, never dropped."""
        return self.status in _AUTH_STATUSES

    @property
    def unknown(self):
        """True when the server does not know what the request names (404): for a run's
        reports, the run. A server that created a run knows it for good, so this server
        answers from another database (restarted with another ``--db``, or from another
        directory); the run's points are then kept in its spill file for ``hyperdial sync``
        to the server that has the run, never dropped."""
        return self.status == 404

    @property
    def kept(self):
        """True when data refused this way is kept for later (the spill file), not dropped:
        a refused token (:attr:`auth`) or an unknown run (:attr:`unknown`)."""
        return self.auth or self.unknown


_LOOPBACK = ("localhost", "::1")


def _tls_context():
    """The TLS settings for https:// servers: the system's CAs plus ``HYPERDIAL_CA_CERT``.

    Raises ValueError naming the file when it cannot be used."""
    context = ssl.create_default_context()
    cafile = _settings.env("HYPERDIAL_CA_CERT")
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
            timeout = _settings.REQUEST_TIMEOUT + len(data or b"") / 262144.0
        if self._keep_alive:
            return self._request_kept(method, path, data, timeout, headers_out)
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", "hyperdial-python/" + _settings.__version__)
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
            raise _SendError("cannot reach %s (%s)" % (self.server, reason), True,
                             timed_out=_is_timeout(reason)) from None
        return _decoded(raw)

    def _request_kept(self, method, path, data, timeout, headers_out=None):
        headers = {"Accept": "application/json",
                   "User-Agent": "hyperdial-python/" + _settings.__version__,
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
            raise _SendError("cannot reach %s (%s)" % (self.server, reason), True,
                             timed_out=_is_timeout(reason)) from None
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


def _is_timeout(reason):
    """Whether a failed request's ``reason`` is a timeout (no answer in time), not a refusal."""
    return isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason)


class _Failover:
    """Requests to the first of several servers of one database that answers, for a run
    under an agent that was given several (``HYPERDIAL_SERVER=A,B``, the agent's current
    server first). A server that cannot be reached at all (refused, reset, timed out; not an
    HTTP error, which that server did answer) is left for the next in the list, which then
    takes every later request, as the agent's own client fails over. Metric points carry
    their steps, so a batch whose answer was lost and is sent again to another server is
    stored once. Raises what :meth:`_Transport.request` raises, for the last server tried."""

    def __init__(self, servers, token):
        self._transports = [_Transport(server, token) for server in servers]
        self._current = 0
        self.token = token or None

    @property
    def server(self):
        """The server requests go to now."""
        return self._transports[self._current].server

    def request(self, method, path, body=None, timeout=None, headers_out=None):
        count = len(self._transports)
        start = self._current
        for offset in range(count):
            index = (start + offset) % count
            try:
                answer = self._transports[index].request(
                    method, path, body, timeout=timeout, headers_out=headers_out)
            except _SendError as err:
                if err.status is None and err.retryable and offset + 1 < count:
                    continue
                raise
            if index != self._current:
                self._current = index
                _warn("%s did not answer; going on with %s"
                      % (self._transports[start].server, self.server))
            return answer
        raise AssertionError("unreachable")

    def close(self):
        for transport in self._transports:
            transport.close()


def _servers_from_env():
    """Every server ``HYPERDIAL_SERVER`` names (comma-separated), normalized as
    :func:`_server_from` does; the default server when none is named."""
    named = _settings.env("HYPERDIAL_SERVER", _settings.DEFAULT_SERVER)
    servers = [_server_from(s) for s in named.split(",") if s.strip()]
    return servers or [_server_from(_settings.DEFAULT_SERVER)]


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


def _server_from(server):
    # A list of servers (for agents on several servers of one database): the first.
    server = server or _settings.env("HYPERDIAL_SERVER", _settings.DEFAULT_SERVER).split(",")[0]
    server = server.strip().rstrip("/")
    if "://" not in server:
        server = "http://" + server
    return server


def _call(transport, method, path, body=None, ok_statuses=(), timeout=None, headers_out=None):
    """One API call for the ask/tell API. Network failures and 5xx answers are retried with
    backoff for the retry window (``_settings.call_retry_seconds()``:
    ``HYPERDIAL_RETRY_SECONDS`` or 60 s); a 422 raises ValueError with the server's message;
    another 4xx raises RuntimeError, unless its status is in ``ok_statuses``, in which case the
    _SendError is returned for the caller to read."""
    started = time.monotonic()
    window = _settings.call_retry_seconds()
    deadline = started + window
    delay = 0.25
    warned = False
    while True:
        attempt_timeout = timeout
        left = deadline - time.monotonic()
        if timeout is None and left < _settings.REQUEST_TIMEOUT:
            # A small request's attempt ends about with the window, so the call gives up about
            # when the window says, not a whole request timeout later; but it waits long
            # enough for a server whose database is down to say so (it answers 503 after 1 s).
            attempt_timeout = min(_settings.REQUEST_TIMEOUT, max(2.5, left))
        try:
            return transport.request(method, path, body, timeout=attempt_timeout,
                                     headers_out=headers_out)
        except _SendError as err:
            if err.status in ok_statuses:
                return err
            left = deadline - time.monotonic()
            if err.retryable and left > 0.01:
                if not warned and time.monotonic() - started >= 2.0:
                    # Say once that the client is waiting, and for how long at most.
                    warned = True
                    _warn("%s; retrying for up to %.0f s" % (err, window))
                # The last attempt comes at the end of the window, not a backoff before it.
                time.sleep(min(delay, left))
                delay = min(delay * 2, 5.0)
                continue
            if err.status in (400, 422):
                raise ValueError(_error_text(err)) from None
            if err.retryable and err.status is not None:
                # The server answered: it runs, and starting another would not help.
                raise RuntimeError(
                    "hyperdial: %s, after retrying for %.0f s: the server at %s is running "
                    "but could not do it%s; its log says why"
                    % (err, time.monotonic() - started, transport.server,
                       " (503: its database is down, full or busy)" if err.status == 503
                       else "")
                ) from None
            if err.timed_out:
                # Something accepted the connection and did not answer in time: a server that
                # is up but waiting (on its database, say), not one that is missing.
                raise RuntimeError(
                    "hyperdial: %s, after retrying for %.0f s: the server at %s accepted the "
                    "connection but did not answer in time (is it waiting for its database? "
                    "its log says why)" % (err, time.monotonic() - started, transport.server)
                ) from None
            if err.retryable:
                raise RuntimeError(
                    "hyperdial: %s, after retrying for %.0f s: is the server running? Start "
                    "one with %s (with the --db it had, where the sweep is), or name another "
                    "with server= or HYPERDIAL_SERVER"
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


def _start_command(url):
    """The command that starts a server answering at ``url``, quoted for a message:
    `hyperdial server` for the default address, with ``--bind`` for another loopback
    address, and for another host the command to run on it (``--bind 0.0.0.0:PORT``, with a
    token in its environment, since other machines can reach it)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number: say it in general terms
        return "`hyperdial server --bind HOST:PORT`"
    if url.rstrip("/") == _settings.DEFAULT_SERVER:
        return "`hyperdial server`"
    if host in _LOOPBACK or host.startswith("127."):
        bind = "%s:%d" % ("127.0.0.1" if host == "localhost" else
                          "[::1]" if host == "::1" else host, port)
        return "`hyperdial server --bind %s`" % bind
    # The token goes in the server's environment, never on its command line (where `ps`
    # shows it to every user of that machine).
    return ("`HYPERDIAL_TOKEN=TOKEN hyperdial server --bind 0.0.0.0:%d` on %s (and "
            "HYPERDIAL_TOKEN=TOKEN here)" % (port, host))
