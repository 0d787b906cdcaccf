"""The tracking run: :func:`init` (which picks the agent, server, offline or disabled mode),
:class:`Run` (log, summary, config, finish), :class:`Summary`, and the module-level
:func:`log` and :func:`finish` of the current run.

Metrics are sent in batches by a background thread; a server that goes away never makes the
training script fail. Every transient failure is retried with backoff for the retry window
(``_settings.retry_seconds()``), also when the script ends; points still unsent after it go to
the spill file (:mod:`._sinks`), and the run's record on the server says how many are
missing. Runs still open at exit are finished (exit code 1 after an uncaught exception); under
an agent, SIGTERM finishes them first (exit 143). The current run is published as the
package's ``hyperdial.run``, ``hyperdial.config`` and ``hyperdial.summary``.
"""

import atexit
import collections
import collections.abc
import json
import numbers
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

from . import _settings
from ._errors import _warn
from ._history import _HistoryReader
from ._sinks import (_HTTPSink, _NullSink, _OfflineSink, _dumps, _fit_point, _halve,
                     _body_size, _now_ms, _spill_file)
from ._transport import _Failover, _SendError, _servers_from_env, _Transport
from ._values import Config, _deep_merge, _flatten_values, _jsonable, _overridden


# The runs of this process not finished yet: finished at exit, or on SIGTERM under an agent.
_active_runs = []
_active_lock = threading.Lock()
_hooks_installed = False
_uncaught_exception = False
_exit_code = None  # what the script passed to sys.exit(), recorded by the hook
_agent_next_step = {}  # run id -> next step, so a second init() under an agent goes on counting


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
        #: Whether ``init`` continued an existing run (``id=`` with ``resume=``).
        self.resumed = False
        self._resume_file = None
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

    def mark_preempting(self):
        """Say that this run is being preempted (its job is being stopped by a scheduler), so
        that when its process then fails (non-zero exit, killed by a signal) the run ends
        interrupted and its sweep queues it again, as W&B requeues a preempted run; a process
        that exits 0 still ends the run finished. Call it when the job is told to stop (a
        SIGTERM handler, before saving a checkpoint); the run that is queued again finds this
        one's id in ``HYPERDIAL_RETRY_OF``.

        Returns True when the agent running this process was told (through the file
        ``HYPERDIAL_PREEMPT_FILE`` names), False outside an agent, where nothing queues a run
        again. Never raises.
        """
        return _mark_preempting()

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
            overflow = len(self._points) - _settings.MAX_BUFFER
            if overflow > 0:
                if self._spill is not None:  # one write for a tenth of the buffer, not one per log()
                    overflow = min(len(self._points), max(overflow, _settings.MAX_BUFFER // 10))
                self._drop_oldest_locked(overflow)
            if was_empty or len(self._points) >= _settings.FLUSH_POINTS:
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
        if not -2**31 <= exit_code < 2**31:
            exit_code = 1  # no process exits so; the server takes 32-bit codes, and it failed
        ended_ms = _now_ms()  # the run's end, however late the server hears of it
        with self._cond:
            if self._finished:
                return
            self._finished = True
            self._closing = True
            self._cond.notify_all()
        if exit_code == 0 and self._resume_file:
            # Done: the next init(resume=True) in this directory starts a new run.
            if _resumable(self._resume_file) == self.id:
                try:
                    os.remove(self._resume_file)
                except OSError:
                    pass
        deadline = self._finish_deadline()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(max(0.0, deadline - time.monotonic()))
        # Keep trying until everything is sent or the retry window is over.
        pause = 0.1
        while not self._flush(deadline=deadline, quiet=True):
            if (time.monotonic() + pause >= deadline or self._kept_for_later()
                    or self._agent_takes_over()):
                # A refused token or an unknown run is no outage: waiting cannot help.
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
        elif self._spilled > spilled_before and self._token_refused():
            _warn("%d metric points were refused with this run's token (%s); they are kept in "
                  "%s: upload them with `hyperdial sync` and a token the server accepts"
                  % (self._spilled - spilled_before, self._last_error, self._spill.path))
        elif self._spilled > spilled_before and self.mode == "agent" and not self._report_delivery:
            # Handed over (the agent gave this script its spill directory): the agent uploads
            # the file when the server answers, and names it (with the command) if it does not.
            _warn("%d metric points did not reach the server (%s); they are kept in %s, which "
                  "the agent running this script uploads when the server answers"
                  % (self._spilled - spilled_before, self._last_error, self._spill.path))
        elif self._spilled > spilled_before:
            _warn("%d metric points did not reach the server within %g s (%s); they are kept in "
                  "%s: upload them with `hyperdial sync`"
                  % (self._spilled - spilled_before, _settings.retry_seconds(), self._last_error,
                     self._spill.path))
        try:
            finish_deadline = max(deadline, time.monotonic() + 2.0)
            missing = self._spilled + self._dropped
            if self._report_delivery and missing:
                files = [self._spill.label] if self._spill is not None and self._spilled else []
                self._deliver(self._sink.delivery, (missing, files), finish_deadline, quiet=True)
            if self._deliver(self._sink.finish, (exit_code, ended_ms), finish_deadline,
                             quiet=True) == "fail":
                if getattr(self._sink, "finish_run", False) and self._spill_records(
                        [_dumps({"type": "finish", "exit_code": exit_code, "time_ms": ended_ms})]):
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
        """Store ``values``, the script's own config, with the run: ``PUT
        /api/v1/runs/{id}/config`` (agent and server mode), or a ``config`` record in the
        offline file. A server that does not take it (away, or refusing the token) gets it
        from the run's spill file through ``hyperdial sync``."""
        body = _jsonable(values)
        if not body:
            return
        if self.mode == "offline" and hasattr(self._sink, "send_config"):
            try:
                self._sink.send_config(body)
            except _SendError as err:
                self._warn_once("config", "could not record the run's config (%s)" % err)
            return
        transport = getattr(self._sink, "transport", None)
        if self.mode not in ("agent", "server") or transport is None or not self.id:
            return
        path = "/api/v1/runs/%s/config" % urllib.parse.quote(self.id, safe="")
        self._put_or_keep(transport, path, body, {"type": "config", "values": body}, "config")

    def _send_name(self, name):
        """``PUT /api/v1/runs/{id}/name`` with the name the script gave its run (kept in the
        spill file for ``hyperdial sync`` when the server does not take it)."""
        transport = getattr(self._sink, "transport", None)
        if transport is None or not self.id:
            return
        path = "/api/v1/runs/%s/name" % urllib.parse.quote(self.id, safe="")
        self._put_or_keep(transport, path, {"name": str(name)},
                          {"type": "name", "name": str(name)}, "name")

    def _put_or_keep(self, transport, path, body, record, what):
        """PUT ``body`` at ``path`` (3 tries); when the server is away or refuses the token,
        keep ``record`` in the spill file (``hyperdial sync`` sends it), else warn once."""
        error = None
        for delay in (0.0,) + tuple(_settings.RETRY_DELAYS):
            if delay:
                time.sleep(delay)
            try:
                transport.request("PUT", path, body)
                return
            except _SendError as err:
                error = err
                if not err.retryable:
                    break
        kept = (error is not None and (error.retryable or error.auth)
                and self._spill_records([_dumps(record)]))
        if kept:
            self._warn_once(what, "could not store the run's %s on the server (%s); it is kept "
                                  "in %s for `hyperdial sync`" % (what, error, self._spill.path))
        else:
            self._warn_once(what, "could not store the run's %s on the server (%s)" % (what, error))

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
            self._flush(deadline=time.monotonic() + _settings.REQUEST_TIMEOUT, quiet=True)
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
                % (_settings.MAX_BUFFER, self._spill.path),
            )
            return
        self._dropped += count
        self._warn_once(
            "overflow",
            "more than %d metric points are waiting to be sent; dropping the oldest"
            % _settings.MAX_BUFFER,
        )

    def _finish_deadline(self):
        """When finish() stops waiting for the server: the end of the retry window of the
        ongoing outage (or of a new one), sooner after SIGTERM (the agent's grace period)."""
        now = time.monotonic()
        window = _settings.retry_seconds()
        with self._lock:
            since = self._outage_since
        deadline = now + window if since is None else max(now + 0.5, since + window)
        if _terminating:
            deadline = min(deadline, now + _settings.TERM_FLUSH_SECONDS)
        return deadline

    def _agent_takes_over(self):
        """True when finish() should stop waiting for a server that does not answer and spill:
        under an agent with a spill directory, once the outage has lasted
        ``_settings.AGENT_HANDOVER_SECONDS``. The agent uploads the spill file when the server
        answers (it waits for it) or leaves it to ``hyperdial sync``, and it dates the run's
        end by the process's exit: waiting out the retry window here would stretch the run's
        duration by that window."""
        if self.mode != "agent" or self._spill is None:
            return False
        with self._lock:
            since = self._outage_since
        return since is not None and time.monotonic() - since >= _settings.AGENT_HANDOVER_SECONDS

    def _window_over_locked(self):
        return (self._outage_since is not None
                and time.monotonic() - self._outage_since >= _settings.retry_seconds())

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
            if len(self._points) >= _settings.FLUSH_POINTS:
                due = now
            else:
                due = self._last_flush + _settings.FLUSH_INTERVAL
            times.append(max(due, self._retry_at))
        if self._sink.heartbeat_enabled:
            times.append(max(self._last_contact + _settings.HEARTBEAT_INTERVAL, self._retry_at))
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
                    self._retry_at = time.monotonic() + _settings.BACKOFF_MAX

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

    def _token_refused(self):
        """True when the last failure was the server refusing the token (401, 403)."""
        return getattr(self._last_error, "auth", False)

    def _kept_for_later(self):
        """True when the last failure keeps the points for later (the spill file) at once: the
        token was refused, or the server does not know the run (404). Waiting cannot help
        either: the server answers."""
        return getattr(self._last_error, "kept", False)

    def _note_failure(self, err, quiet=False):
        self._last_error = err
        if getattr(err, "kept", False):
            # Said once per run, quiet or not: a refused token or a server without the run is
            # no outage. Where the points wait, and the command that uploads them (to this
            # server with a good token; to the server with the run's database otherwise).
            spill = self._spill
            where = "kept in %s" % spill.path if spill is not None else "kept in memory"
            sync = ("`hyperdial sync %s --server %s`"
                    % (os.path.dirname(spill.path), spill.server if err.auth else "URL")
                    if spill is not None else "`hyperdial sync`")
            if err.auth:
                self._warn_once(
                    "token",
                    "the server refused this run's token (%s): its metric points are %s; set "
                    "HYPERDIAL_TOKEN to a token the server accepts, then upload them with %s"
                    % (err.status, where, sync))
            else:
                self._warn_once(
                    "unknown",
                    "the server does not know run %s (%s): it answers from another database "
                    "than the one the run was created in (a server restarted with another "
                    "--db, or from another directory); its metric points are %s: once the "
                    "server with the run's database answers, upload them with %s"
                    % (self.id, err, where, sync))
        with self._lock:
            if self._outage_since is None:
                self._outage_since = time.monotonic()
            self._failures += 1
            delay = min(_settings.BACKOFF_MAX, 0.5 * (2 ** min(self._failures, 16)))
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
                if err.kept:
                    # A refused token, or a server without the run: kept like an outage (spill
                    # file, then `hyperdial sync`), never dropped.
                    self._note_failure(err, quiet)
                    return "fail"
                if not err.retryable:
                    self._warn_once("refused:" + str(err), "%s; dropping that data" % (err,))
                    return "drop"
                delays = _settings.RETRY_DELAYS
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
        """The oldest points that fit in one request (at most _settings.BATCH_POINTS of them)."""
        batch, size = [], 0
        while self._points and len(batch) < _settings.BATCH_POINTS:
            point = self._points[0]
            point_size = len(point.encode("utf-8"))
            size_after = _body_size(size + point_size, len(batch) + 1)
            if batch and size_after > _settings.MAX_REQUEST_BYTES:
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
            if result == "drop":
                # Refused for good (warned about): counted in the run's delivery report.
                with self._lock:
                    self._dropped += len(part)
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
                        if (self._window_over_locked() or self._kept_for_later()) and deadline is None:
                            # The outage outlasted the retry window, or the token was
                            # refused or the run is unknown: keep what waits on disk.
                            points, self._points = list(self._points), collections.deque()
                        else:
                            points = None
                        overflow = len(self._points) - _settings.MAX_BUFFER
                        if overflow > 0:
                            self._drop_oldest_locked(overflow)
                    if points and not self._spill_points(points):
                        with self._lock:
                            self._points.extendleft(reversed(points))
                    elif points:
                        self._warn_once(
                            "spilled",
                            "the server did not take metrics for %g s; unsent points go to %s "
                            "(this warning is not repeated)"
                            % (_settings.retry_seconds(), self._spill.path))
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
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=_settings.GIT_TIMEOUT,
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
                timeout=_settings.GIT_TIMEOUT,
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
    # An atexit handler cannot see the exit status, so sys.exit() records its code on the
    # way out (W&B's client does the same): `sys.exit(143)` after a preemption signal ends
    # the run failed with 143, and `init(resume=True)` continues it next time.
    previous_exit = sys.exit

    def exit_hook(code=None):
        global _exit_code
        _exit_code = code
        previous_exit(code)

    sys.exit = exit_hook


def _status_of(code):
    """The process exit status ``sys.exit(code)`` gives: None is 0, an integer itself, any
    other object (a message) 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def _at_exit():
    with _active_lock:
        runs = list(_active_runs)
    code = 1 if _uncaught_exception else _status_of(_exit_code)
    for r in runs:
        if r._pid == os.getpid():
            r.finish(exit_code=code)


def _package():
    """The package module, ``hyperdial``, which holds the current run as ``hyperdial.run``
    (and its config and summary as ``hyperdial.config`` and ``hyperdial.summary``): read and
    set here through this. Looked up at call time, since this module is imported while the
    package is being imported (importing it here would be a cycle)."""
    return sys.modules[__package__]


def _forget(r):
    package = _package()
    with _active_lock:
        if r in _active_runs:
            _active_runs.remove(r)
    if r.mode == "agent" and r.id:
        _agent_next_step[r.id] = r._step
    if package.run is r:
        package.run = None


def init(config=None, project=None, name=None, mode=None, id=None, resume=None,  # noqa: A002
         _mode_source=None):
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

    ``id`` and ``resume`` continue a run outside a sweep in a later process (a preempted job
    that restarts), as W&B's ``wandb.init(id=, resume=)`` do. ``id`` names the run (1 to 64
    characters of ``A-Z a-z 0-9 _ -``); ``resume`` says what to do when that run exists:
    ``"allow"`` continues it (it is ``running`` again, its history kept, and steps go on from
    its last one), ``"must"`` continues it and raises ``ValueError`` when there is none,
    ``"never"`` (the default with an ``id``) raises ``ValueError`` when it exists.
    ``resume=True`` (or ``"auto"``) without an ``id`` continues the run this directory's last
    ``init(resume=True)`` started, when it did not finish with exit code 0 (its id is kept in
    ``$HYPERDIAL_DIR/resume.json`` until then). Under an agent both are ignored: the agent's
    run is the run. Offline, ``id`` names the offline file's run, which ``hyperdial sync``
    creates or continues.
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
    current = _package().run
    if current is not None and not current.finished:
        current.finish()

    merged = Config(defaults)
    config_path = _settings.env("HYPERDIAL_CONFIG")
    sweep_values = _read_sweep_config(config_path) if config_path else {}
    if sweep_values:
        merged = _deep_merge(merged, sweep_values)

    mode_arg = mode
    mode = (mode or _settings.env("HYPERDIAL_MODE", "auto")).strip().lower()
    if mode not in ("auto", "offline", "disabled"):
        _warn("unknown HYPERDIAL_MODE %r; using auto" % mode)
        mode = "auto"
    project_arg = project
    project = project or _settings.env("HYPERDIAL_PROJECT", "default")
    # A list of servers (for agents on several servers of one database): the first.
    server = _settings.env("HYPERDIAL_SERVER", _settings.DEFAULT_SERVER).split(",")[0]
    server = server.strip().rstrip("/")
    if "://" not in server:
        server = "http://" + server
    token = _settings.env("HYPERDIAL_TOKEN")
    run_id = _settings.env("HYPERDIAL_RUN_ID")
    chosen_id, resume, resume_file = _resume_choice(id, resume)

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
        # Every server the agent was given, its current one first: the run's points follow
        # the agent to another server of the same database when this one goes away.
        servers = _servers_from_env()
        transport = _Failover(servers, token) if len(servers) > 1 else _Transport(server, token)
        # The agent names the directory and uploads (or reports) what lands there when the
        # process has ended; without it, this process reports what it spilled.
        agent_spill_dir = _settings.env("HYPERDIAL_SPILL_DIR")
        # The run exists in the project the agent (or `hyperdial run`) created it in, named
        # in HYPERDIAL_PROJECT; a project passed to init() cannot move it.
        created_in = _settings.env("HYPERDIAL_PROJECT") or project
        new_run = Run(
            "agent", merged, created_in, name, run_id, _settings.env("HYPERDIAL_SWEEP_ID"),
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
        if chosen_id is not None:
            record["id"] = chosen_id
            record["resume"] = resume
        # Where the offline mode came from, as the user wrote it (`_mode_source`: the W&B
        # layer's `WANDB_MODE=offline`, `mode='offline'` or `Settings(mode=...)`).
        offline_reason = None
        if mode == "offline":
            offline_reason = _mode_source or (
                "mode=%r was passed to hyperdial.init()" % (mode_arg,) if mode_arg
                else "HYPERDIAL_MODE=offline")
        if mode == "auto":
            transport = _Transport(server, token)
            created = None
            try:
                wait_until = _wait_for_server(transport, project)
                body = {k: v for k, v in record.items() if v is not None}
                answer_headers = {}
                created = _create_run(
                    transport, body, answer_headers,
                    # The id came from the resume file: another process of this directory
                    # may still be running it, and finish it for good while we wait.
                    resume_file if (id is None and resume_file and chosen_id) else None,
                    wait_until=wait_until)
            except _SendError as err:
                if chosen_id is not None and err.status in (400, 404, 409):
                    # The server answered about the chosen id: going offline would only
                    # hide it until `hyperdial sync` met the same refusal.
                    message = (err.payload or {}).get("error") if isinstance(
                        err.payload, dict) else None
                    raise ValueError("hyperdial.init(id=%r, resume=%r): %s" % (
                        chosen_id, resume, message or err)) from None
                offline_reason = str(err)
            if created is not None:
                if isinstance(created, dict) and isinstance(created.get("id"), str):
                    resumed = answer_headers.get("x-hyperdial-resumed") == "true"
                    first_step = int(created.get("steps") or 0) if resumed else 0
                    new_run = Run(
                        "server", merged, project, name, created["id"], created.get("sweep"),
                        _HTTPSink(transport, created["id"], finish_run=True, heartbeat=True),
                        server=server, spill=_spill_file(None, created["id"], server),
                        report_delivery=True, first_step=first_step,
                    )
                    new_run.resumed = resumed
                    if resumed:
                        _warn("resuming run %s at step %d" % (created["id"], first_step))
                        stored = created.get("summary")
                        if isinstance(stored, dict):
                            # What the run holds: the last values and the summary set so far.
                            new_run.summary._logged.update(stored)
                    if resume_file:
                        _remember_resumable(resume_file, created["id"])
                        new_run._resume_file = resume_file
                else:
                    offline_reason = "the server's answer to POST /api/v1/runs has no run id"
            elif offline_reason is None:
                offline_reason = "the server's answer to POST /api/v1/runs has no run id"
        if new_run is None:
            local_id = _local_id()
            directory = os.path.abspath(_settings.env("HYPERDIAL_DIR", ".hyperdial"))
            path = os.path.join(directory, "offline", local_id + ".jsonl")
            init_record = {"type": "init"}
            init_record.update(record)
            # The run's id on the server once synced (`offline-LOCAL_ID`), so a file synced
            # again (a copy brought back, a sync cut short) continues that run, not a new one.
            init_record["local_id"] = local_id
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
                new_run = Run("offline", merged, project, name, chosen_id or local_id, None,
                              sink, path=path)

    new_run._sweep_values = sweep_values
    if new_run.mode == "agent" and defaults:
        # Store the script's defaults with the run, beside the sweep's values (as W&B does).
        new_run._send_config(defaults)
    if new_run.mode == "agent" and name:
        # The agent (or `hyperdial run`) created the run before the script named it.
        new_run._send_name(name)
    created_in = _settings.env("HYPERDIAL_PROJECT")
    if new_run.mode == "agent" and project_arg and project_arg != created_in:
        # The run exists already, in the project it was created in: say so rather than let
        # the script believe it filed the run elsewhere.
        # (W&B says the same of wandb.init(project=...) under a sweep agent.)
        named = " %r" % (created_in,) if created_in else ""
        if new_run.sweep_id:
            where = "in its sweep's project%s" % (named,)
        else:
            where = ("by `hyperdial run` in its project%s; `hyperdial run --project %s -- ...` "
                     "files it in this one" % (named, project_arg))
        _warn("init(project=%r) ignored: the run was created before the script started, %s"
              % (project_arg, where))
    _install_hooks()
    if new_run.mode == "agent":
        # An agent stops a run with SIGTERM: send the buffered points before exiting.
        _install_sigterm_handler()
    with _active_lock:
        _active_runs.append(new_run)
    _set_current(new_run)
    return new_run


def _failing_but_there(err):
    """Whether ``err`` comes from a server that took the connection but could not do the
    request: a 5xx (its database down, full or busy) or no answer in time."""
    return err.timed_out or (err.status is not None and err.status >= 500)


def _wait_for_server(transport, project):
    """The request of :func:`init`'s auto mode that looks for a server (the sweeps of
    ``project``, answered from the database). No server (a refused connection, no route)
    raises ``_SendError`` at once, so the run logs offline without delay. A server that took
    the connection but failed (:func:`_failing_but_there`) is asked again until
    :func:`_settings.init_wait_seconds` have passed (``HYPERDIAL_INIT_TIMEOUT``, 30 s), said
    once on standard error: its database may be back in a moment, and a live run beats a file
    to sync; then the last error is raised. The first attempt waits ``PROBE_TIMEOUT``, later
    ones at least 2.5 s, long enough for a server whose database is down to answer 503.
    Returns the monotonic time the wait ends at, for :func:`_create_run`."""
    path = "/api/v1/sweeps?project=" + urllib.parse.quote(project, safe="")
    deadline = time.monotonic() + _settings.init_wait_seconds()
    timeout = _settings.PROBE_TIMEOUT
    said = False
    while True:
        try:
            transport.request("GET", path, timeout=timeout)
            return deadline
        except _SendError as err:
            left = deadline - time.monotonic()
            if not _failing_but_there(err) or left <= 0:
                raise
            if not said:
                _warn("the server at %s %s; waiting up to %.0f s for it before logging offline "
                      "(HYPERDIAL_INIT_TIMEOUT)" % (
                          transport.server,
                          "did not answer in time" if err.timed_out
                          else "answered %s (its database may be down or busy)" % err.status,
                          left))
                said = True
            time.sleep(min(1.0, left))
            timeout = min(_settings.REQUEST_TIMEOUT, max(2.5, deadline - time.monotonic()))


def _create_run(transport, body, answer_headers, resume_file=None, wait_until=None):
    """``POST /api/v1/runs`` with ``body``; a run to resume that another process was still
    writing to (``409``, code ``run_active``) is asked for again every few seconds for up to
    ``RESUME_WAIT`` seconds, with one line saying so: a process killed without a word leaves
    its run ``running`` until the server's run timeout, and its restart should go on with it.
    With ``resume_file`` (the id came from it), a run that other process finished with exit
    code 0 meanwhile (it removed the id from the file) is not continued: a new run is made.
    A ``503`` (a storage fault: nothing of the request was stored) is asked again until
    ``wait_until`` (a monotonic time), as :func:`_wait_for_server` waits; a request that got
    no answer is not, since the run may have been made. Raises ``_SendError`` as the
    transport does."""
    deadline = time.monotonic() + _settings.RESUME_WAIT
    said = False
    while True:
        if resume_file and body.get("id") is not None and _resumable(resume_file) != body["id"]:
            body = {k: v for k, v in body.items() if k not in ("id", "resume")}
        try:
            return transport.request("POST", "/api/v1/runs", body, headers_out=answer_headers)
        except _SendError as err:
            if err.status == 503 and wait_until is not None and time.monotonic() < wait_until:
                time.sleep(min(1.0, max(0.05, wait_until - time.monotonic())))
                continue
            active = (err.status == 409 and isinstance(err.payload, dict)
                      and err.payload.get("code") == "run_active")
            if not active or time.monotonic() >= deadline:
                raise
            if not said:
                _warn("run %s is still running elsewhere or was killed without a word; "
                      "waiting up to %g s for it to fall silent" % (body.get("id"),
                                                                    _settings.RESUME_WAIT))
                said = True
            time.sleep(min(5.0, max(0.05, deadline - time.monotonic())))


def _resume_choice(run_id, resume):
    """``init``'s ``id`` and ``resume`` as the server takes them: ``(id or None, mode or None,
    path of the resume file or None)``. Raises ``ValueError`` for a value W&B does not
    accept either."""
    if resume is None or resume is False:
        mode = None
    elif resume is True or resume == "auto":
        mode = "auto"
    elif resume in ("allow", "must", "never"):
        mode = resume
    else:
        raise ValueError(
            "hyperdial.init: resume must be one of None, False, True, 'auto', 'allow', 'must', "
            "'never'; got %r" % (resume,))
    if run_id is not None and not isinstance(run_id, str):
        raise ValueError("hyperdial.init: id must be a string, got %r" % (run_id,))
    resume_file = None
    if mode == "auto":
        resume_file = os.path.join(
            os.path.abspath(_settings.env("HYPERDIAL_DIR", ".hyperdial")), "resume.json")
        if run_id is None:
            run_id = _resumable(resume_file)
        mode = "allow"
    if run_id is None:
        if mode == "must":
            raise ValueError('hyperdial.init: resume="must" needs the id of the run to resume')
        return None, None, resume_file
    return run_id, mode or "never", resume_file


def _resumable(path):
    """The run id a resume file holds, or None (no file, or one that cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            held = json.load(f).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return held if isinstance(held, str) and held else None


def _remember_resumable(path, run_id):
    """Keep ``run_id`` in the resume file for the next ``init(resume=True)``; a file that
    cannot be written only costs that resumption, with a warning."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"run_id": run_id}, f)
    except OSError as err:
        _warn("cannot write %s (%s): init(resume=True) will start a new run" % (path, err))


def _set_current(r):
    package = _package()
    package.run = r
    package.config = r.config
    package.summary = r.summary


def log(data, step=None):
    """Log metric values to the current run; see :meth:`Run.log`."""
    current = _package().run
    if current is None:
        raise RuntimeError("hyperdial.log() called before hyperdial.init()")
    current.log(data, step=step)


def _mark_preempting():
    """Create the file ``HYPERDIAL_PREEMPT_FILE`` names (see :meth:`Run.mark_preempting`);
    False when there is none to create, or it cannot be created (said on stderr)."""
    path = _settings.env("HYPERDIAL_PREEMPT_FILE", "").strip()
    if not path:
        return False
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w"):
            pass
    except OSError as err:
        _warn("cannot mark the run preempting in %s (%s)" % (path, err))
        return False
    return True


def finish(exit_code=0):
    """Finish the current run (see :meth:`Run.finish`); does nothing when there is none."""
    current = _package().run
    if current is not None:
        current.finish(exit_code=exit_code)
