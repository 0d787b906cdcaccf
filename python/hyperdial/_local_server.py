"""Finding a server for a :class:`Sweep` or an :class:`Api`, or starting a local one.

The server named (``server=``, else ``HYPERDIAL_SERVER``) must answer; when none is named and
nothing answers at the default address, this process starts ``hyperdial server`` on a free
loopback port and the default store (:class:`_LocalServer`), once, and stops it at exit (it
also stops by itself when this process ends, however that happens).
"""

import atexit
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time

from . import _settings
from ._errors import _warn
from ._transport import _SendError, _Transport, _server_from, _start_command


_local = None  # the _LocalServer this process started, if any
_local_lock = threading.Lock()


def _answers(transport, seconds):
    """Whether anything answers HTTP at the transport's server within ``seconds`` (connection
    refusals are tried again meanwhile: a server may be starting). An HTTP error or a TLS
    failure counts as an answer, and so does a connection accepted but not answered in time (a
    server waiting on its database answers ``503`` only after a second or more): the call that
    follows says what is wrong. Only a server that nothing listens for is missing."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        try:
            transport.request("GET", "/api/v1/sweeps?project=hyperdial-probe",
                              timeout=max(0.05, min(_settings.PROBE_TIMEOUT, left)))
            return True
        except _SendError as err:
            if err.status is not None or not err.retryable or err.timed_out:
                return True
        if deadline - time.monotonic() <= 0.1:
            return False
        time.sleep(0.1)


def _hyperdial_binary():
    """The ``hyperdial`` executable: ``HYPERDIAL_BIN``, else the one on ``PATH``; or None."""
    named = _settings.env("HYPERDIAL_BIN")
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
        deadline = time.monotonic() + _settings.LOCAL_START_SECONDS
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
            % (local.database, _settings.DEFAULT_SERVER))


def _stop_local():
    """Stop the local server this process started, if any (also run at exit)."""
    global _local
    with _local_lock:
        local, _local = _local, None
    if local is not None:
        local.stop()


def _sweep_server(server, token):
    """The base URL a :class:`Sweep` talks to, with a server answering there: ``server``, else
    ``HYPERDIAL_SERVER``, else :data:`_settings.DEFAULT_SERVER`; when none was named and
    nothing answers at the default address, a local server this process starts
    (:class:`_LocalServer`). A named server that does not answer within
    ``_settings.CONNECT_SECONDS`` raises RuntimeError with the command that starts one."""
    global _local
    # A list of servers (for agents on several servers of one database): the first.
    named = server or (_settings.env("HYPERDIAL_SERVER") or "").split(",")[0].strip() or None
    url = _server_from(named)
    if not named:
        with _local_lock:
            if _local is not None and _local.alive():
                return _local.url
    seconds = _settings.CONNECT_SECONDS if named else _settings.PROBE_TIMEOUT
    if _answers(_Transport(url, token), seconds):
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
