"""Ask/tell: drive a sweep from Python without agents. :class:`Sweep` (create or get a
sweep, ``ask``, ``tell``, ``tell_and_ask``, ``optimize``, ``best``, the trials) and
:class:`Trial` (one suggestion, or any run read back).

Every call goes through :func:`_call` (retried while the server is away). A claim carries an
idempotency key, so a retried claim never makes a second trial; while trials are open a
daemon thread sends their heartbeats; ``optimize`` leaves no trial open after a
KeyboardInterrupt. The server's warnings about a new sweep's config are emitted as
:class:`ConfigWarning`.
"""

import collections.abc
import contextlib
import json
import math
import numbers
import os
import secrets
import threading
import time
import urllib.parse
import warnings

from . import _settings
from ._errors import (ConfigWarning, NoMetricError, TrialPruned, ValueWarning, _user_stacklevel,
                      _warn)
from ._history import _HistoryReader
from ._local_server import _local_store_hint, _sweep_server
from ._query import _all_runs, _iso_time, _sorted_runs
from ._states import IN_FLIGHT_RUN_STATES, TERMINAL_RUN_STATES, RunState, SweepState
from ._transport import _SendError, _Transport, _call, _error_text, _server_from
from ._values import Config, _jsonable, _metric_value


def _is_crashed(err):
    """Whether ``err`` is the server's refusal of a report for a run it ended crashed
    (``409``, code ``run_crashed``)."""
    return err.status == 409 and isinstance(err.payload, dict) \
        and err.payload.get("code") == "run_crashed"


_WAITED_HEADER = "x-hyperdial-waited-ms"  # on a 204 after the server held the claim open


def _claim_key():
    """A fresh idempotency key for one claim (``claim_key``): 32 hex digits. A server that
    stored the trial of a claim answers a retry carrying the same key with that trial; a
    server without the field ignores it."""
    return secrets.token_hex(16)


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


def _no_number(value):
    """How a value returned by an objective that ends its trial ``failed`` without an error
    reads (``None``, ``nan``, ``inf``; for several objectives, the first such entry), or None
    when it is a number, or something :meth:`Sweep.tell` refuses with a message of its own."""
    entries = (value.values() if isinstance(value, collections.abc.Mapping)
               else value if isinstance(value, (list, tuple)) else (value,))
    for entry in entries:
        if entry is None:
            return "None"
        try:
            if _metric_value("value", entry) is None:
                return repr(float(entry if isinstance(entry, numbers.Real) else entry.item()))
        except (TypeError, ValueError, AttributeError):
            return None
    return None


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


# For each of Optuna's define-by-run calls: the call, the same parameter in a sweep config,
# and its name (the message of ``Trial.__getattr__``).
# Optuna's study attributes, and what stands for each on a hyperdial Sweep (the message of
# ``Sweep.__getattr__``).
_STUDY_ATTRIBUTES = {
    "best_trial": "sweep.best() is the best trial (a Trial), None before any result",
    "best_value": "sweep.best().value is the best trial's metric",
    "best_params": "sweep.best().params are the best trial's parameters",
    "best_trials": "a multi-objective sweep's front is `hyperdial best SWEEP` (GET "
                   "/api/v1/sweeps/{id}/front); each trial's value there is a dict",
    "trials_dataframe": "sweep.trials() lists every trial; `hyperdial export SWEEP --format "
                        "csv` writes them as a table pandas reads",
    "get_trials": "sweep.trials() lists every trial, by number",
    "direction": "sweep.metric is {\"name\", \"goal\"} (goal: minimize or maximize)",
    "study_name": "sweep.name is the sweep's name, sweep.id its id",
}

_SUGGEST_EXAMPLES = {
    "suggest_float": ('suggest_float("lr", 1e-5, 1e-1, log=True)',
                      "lr: {distribution: log_uniform_values, min: 1e-5, max: 0.1}", "lr"),
    "suggest_uniform": ('suggest_uniform("dropout", 0.0, 0.5)',
                        "dropout: {min: 0.0, max: 0.5}", "dropout"),
    "suggest_loguniform": ('suggest_loguniform("lr", 1e-5, 1e-1)',
                           "lr: {distribution: log_uniform_values, min: 1e-5, max: 0.1}", "lr"),
    "suggest_discrete_uniform": ('suggest_discrete_uniform("dropout", 0.0, 0.5, 0.1)',
                                 "dropout: {distribution: q_uniform, min: 0.0, max: 0.5, q: 0.1}",
                                 "dropout"),
    "suggest_int": ('suggest_int("layers", 1, 8)',
                    "layers: {distribution: int_uniform, min: 1, max: 8}", "layers"),
    "suggest_categorical": ('suggest_categorical("optimizer", ["adam", "sgd"])',
                            "optimizer: {values: [adam, sgd]}", "optimizer"),
}


# Said when a single number is reported on a sweep with several objectives.
_MULTI_REPORT_NOTE = (" (the points are kept as the trial's history; early termination judges "
                      "one metric, so a sweep with several objectives stops no trial)")


def _told_repr(value):
    """``value`` for a message: its type and its repr, cut to 60 characters."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return "%s %s" % (type(value).__name__, text)


class _Slots:
    """The trials :meth:`Sweep.optimize` may still start, shared by its threads: at most
    ``n_trials`` (None: no limit) until ``deadline`` (a ``time.monotonic()``; None: none),
    or until :meth:`stop`. ``told`` counts the trials told."""

    def __init__(self, n_trials, deadline):
        self._left = n_trials
        self._deadline = deadline
        self._stopped = False
        self._lock = threading.Lock()
        self.told = 0

    def take(self):
        """Reserve a trial: True when one may be started."""
        with self._lock:
            if self._stopped or self._left == 0:
                return False
            if self._deadline is not None and time.monotonic() >= self._deadline:
                return False
            if self._left is not None:
                self._left -= 1
            return True

    def told_one(self):
        with self._lock:
            self.told += 1

    def stop(self):
        with self._lock:
            self._stopped = True


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
        self.value = self._value_of(run)
        self.data = run
        self.created_at = _iso_time(run.get("created_ms"))
        server = getattr(self._transport, "server", None)
        self.url = "%s/runs/%s" % (server, self.id) if server and self.id else None
        self._stop = bool(run.get("stop_requested"))
        self._stop_reason = None
        self._crashed = False  # the server ended it crashed while it was open here
        self._last_contact = time.monotonic()
        # The best value of the sweep metric known of this run: the server's metric when it
        # was read, then each value reported here (a tell sent with the next claim gets no
        # record of the run back, so its value is worked out from this).
        self._best_seen = self.value if isinstance(self.value, (int, float)) else None

    def __getattr__(self, name):
        # Called only for a name the trial does not have. Optuna's define-by-run calls
        # (``trial.suggest_float("lr", 1e-5, 1e-1, log=True)``) have no counterpart here: the
        # space is declared when the sweep is created, and the trial holds its values.
        if name.startswith("suggest_"):
            optuna, ours, key = _SUGGEST_EXAMPLES.get(name, _SUGGEST_EXAMPLES["suggest_float"])
            raise AttributeError(
                "a hyperdial Trial has no %s(): the search space is declared when the sweep is "
                "created, in its config (Optuna's %s is parameters: {%s}), and the objective "
                "reads the value the trial holds: trial.params[\"%s\"] or trial.config.%s "
                "(docs/python.md, \"Coming from Optuna\")" % (name, optuna, ours, key, key))
        if name == "values":
            raise AttributeError(
                "a hyperdial Trial has no values (Optuna's trial.values): trial.value is the "
                "metric, and for a multi-objective sweep the dict of each objective's value")
        raise AttributeError("%r object has no attribute %r" % (type(self).__name__, name))

    def _update(self, run):
        """Take the server's record of this run (the answer to its finish): state, metric,
        summary and the whole answer."""
        self.data = run
        self.state = run.get("state", self.state)
        self.summary = dict(run.get("summary") or self.summary)
        self.value = self._value_of(run)
        if isinstance(self.value, (int, float)):
            self._best_seen = self.value

    def _value_of(self, run):
        """``value`` from the server's record ``run``: its metric; for a trial of a
        multi-objective sweep, the dict of each objective's final value (the run's summary,
        what was told), the values its front is made of, None for an objective it has none
        of."""
        names = self.sweep._several_objectives() if self.sweep is not None else None
        if not names:
            return run.get("metric")
        summary = run.get("summary") or {}
        values = {}
        for name in names:
            value = summary.get(name)
            finite = (isinstance(value, (int, float)) and not isinstance(value, bool)
                      and math.isfinite(value))
            values[name] = value if finite else None
        return values

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
        to stop. Returns :meth:`should_stop`. A trial the server ended ``crashed`` while it
        was open (nothing heard of it for the run timeout: the heartbeats could not get
        through) stores nothing more: this says so once on standard error and returns True,
        and its tell closes it without storing the value.
        """
        if not self.open:
            raise RuntimeError("hyperdial: trial %s was already told (%s)" % (self.id, self.state))
        if self.sweep is None:
            raise RuntimeError("hyperdial: run %s is not a run of a sweep: it has no sweep "
                               "metric to report" % self.id)
        point = {"values": self.sweep._told_values(value, "report")}
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
                raise TypeError("hyperdial: step must be a non-negative integer, got %r" % (step,))
            point["step"] = int(step)
        if self._crashed:
            return True  # the server ended it crashed (said once): nothing more is stored
        answer = _call(self._transport, "POST", self._path("metrics"), {"points": [point]},
                       ok_statuses=(409,))
        if isinstance(answer, _SendError):
            if not _is_crashed(answer):
                raise RuntimeError("hyperdial: " + _error_text(answer)) from None
            self.sweep._crashed_while_open(self, answer)
            return True
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

    def should_prune(self):
        """Optuna's name for :meth:`should_stop`, so a ported objective's
        ``if trial.should_prune(): raise TrialPruned()`` works unchanged."""
        return self.should_stop()

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

    def __getattr__(self, name):
        # Called only for a name the sweep does not have: Optuna's study attributes say what
        # stands for them here.
        said = _STUDY_ATTRIBUTES.get(name)
        if said is not None:
            raise AttributeError("a hyperdial Sweep has no %s (Optuna's study.%s): %s "
                                 "(docs/python.md, \"Coming from Optuna\")" % (name, name, said))
        raise AttributeError("%r object has no attribute %r" % (type(self).__name__, name))

    def __init__(self, data, server=None, token=None, _transport=None):
        """Use :meth:`create` or :meth:`get`. (``_transport``: the connection of the
        :class:`Api` that read the sweep, shared with it.)"""
        self.server = _server_from(server)
        if _transport is not None and _transport.server == self.server:
            self._transport = _transport
        else:
            self._transport = _Transport(self.server, token if token is not None
                                         else _settings.env("HYPERDIAL_TOKEN"), keep_alive=True)
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
        of creating one, says which it did on standard error, and warns (ConfigWarning) when
        it created one although unfinished sweeps of the project carry the config's name. An invalid config raises ValueError with the server's message: for a
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
        project = project or _settings.env("HYPERDIAL_PROJECT")
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
        sweep = cls({"id": "?"}, server=_sweep_server(server, _settings.env("HYPERDIAL_TOKEN")))
        data = _call(sweep._transport, "POST", "/api/v1/sweeps", body, ok_statuses=(422,))
        if isinstance(data, _SendError):
            raise ValueError(_config_error_text(data, "config" in body)) from None
        sweep._set(data)
        _warn_config(data, body)
        if resume:
            sweep._say_resumed()
        return sweep

    def _say_resumed(self):
        """After ``create(resume=True)``: one line on standard error saying whether an
        unfinished sweep was continued or a new one made (Optuna's ``load_if_exists`` logs
        the same), and a :class:`ConfigWarning` when a new one was made although unfinished
        sweeps of the project carry its name: the config was edited, and an edited config is
        a new sweep."""
        data, name = self.data, self.data.get("name")
        called = " (%s)" % name if name else ""
        if data.get("resumed"):
            n = data.get("total_runs") or 0
            _warn("resumed sweep %s%s of project %s: %d trial%s so far"
                  % (self.id, called, data.get("project"), n, "" if n == 1 else "s"))
            return
        _warn("created sweep %s%s: no unfinished sweep of project %s has this config"
              % (self.id, called, data.get("project")))
        if not name:
            return
        listed = _call(self._transport, "GET", "/api/v1/sweeps?project="
                       + urllib.parse.quote(data.get("project") or "", safe=""))
        others = [s for s in (listed or {}).get("sweeps") or ()
                  if isinstance(s, dict) and s.get("id") != self.id and s.get("name") == name
                  and s.get("state") not in (SweepState.FINISHED, SweepState.CANCELLED)]
        if others:
            warnings.warn(
                "hyperdial: resume=True made a new sweep %s: the unfinished sweep%s %s named %r "
                "ha%s another config (an edited config is a new sweep). To continue one as it "
                "is: Sweep.get(%r)" % (
                    self.id, "s" if len(others) > 1 else "",
                    ", ".join(s["id"] for s in others), name,
                    "ve" if len(others) > 1 else "s", others[0]["id"]),
                ConfigWarning, stacklevel=_user_stacklevel())

    @classmethod
    def get(cls, sweep_id, server=None):
        """The sweep with this id."""
        sweep = cls({"id": sweep_id},
                    server=_sweep_server(server, _settings.env("HYPERDIAL_TOKEN")))
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
        return self._several_objectives() or [self._metric_name()]

    def _several_objectives(self):
        """The objective names of a multi-objective sweep, in order; None for one metric."""
        config = self.data.get("config")
        listed = config.get("metrics") if isinstance(config, dict) else None
        if isinstance(listed, list) and len(listed) > 1:
            return [m["name"] for m in listed]
        return None

    def _told_values(self, value, verb="tell"):
        """The metric values of a told or reported ``value``, by name: a number for one
        objective; a dict ``{name: number}`` or a list in the objectives' order for several
        (every objective, no other name). NaN and infinities become None."""
        names = self.objectives()
        if isinstance(value, dict):
            unknown = sorted(map(str, set(value) - set(names)))
            missing = [n for n in names if n not in value]
            if unknown or missing:
                what = []
                if missing:
                    what.append("no value for %s" % ", ".join(missing))
                if unknown:
                    what.append("%s %s not among them" % (
                        ", ".join(unknown), "is" if len(unknown) == 1 else "are"))
                raise ValueError("hyperdial: sweep %s has the objectives %s: %s (give a "
                                 "number for each, None for one that was not reached)"
                                 % (self.id, ", ".join(names), "; ".join(what)))
            return {n: _finite_or_none(value[n], n) for n in names}
        if isinstance(value, (list, tuple)):
            if len(value) != len(names):
                raise ValueError("hyperdial: sweep %s has %d objectives (%s); got %d values"
                                 % (self.id, len(names), ", ".join(names), len(value)))
            return {n: _finite_or_none(v, n) for n, v in zip(names, value)}
        if len(names) > 1:
            raise TypeError("hyperdial: sweep %s has several objectives (%s): %s a dict "
                            "{name: value} or a list in that order%s"
                            % (self.id, ", ".join(names), verb,
                               _MULTI_REPORT_NOTE if verb == "report" else ""))
        return {names[0]: _finite_or_none(value, names[0])}

    def ask(self, timeout=None):
        """The next trial to evaluate (a :class:`Trial`), or None when the sweep is over.

        While nothing can start now (the sweep is paused, or ``run_cap`` is reached with
        trials still open) it waits, for at most ``timeout`` seconds (default 300), then
        raises TimeoutError: each claim asks the server to hold it open for up to 20 s and
        answer as soon as a trial can start or the sweep ends (a long poll); a server that
        answers at once (one without the long poll) is asked again with backoff.
        """
        timeout = _settings.ASK_TIMEOUT if timeout is None else timeout
        started = time.monotonic()
        deadline = started + timeout
        delay = _settings.ASK_BACKOFF[0]
        noted = False
        while True:
            # Long poll: the server may hold the claim open until a trial can start or the
            # sweep ends; a server that does not know wait_ms answers at once.
            wait = min(_settings.ASK_WAIT, max(0.0, deadline - time.monotonic()))
            body = {"wait_ms": int(wait * 1000)} if wait >= 0.001 else {}
            # One key per claim, the same on each of _call's retries of it: a claim whose
            # answer was lost (the server stored the trial, then the connection dropped) gets
            # that trial again instead of a second one.
            body["claim_key"] = _claim_key()
            headers = {}
            with self._sent(("claim", body)):
                answer = _call(self._transport, "POST", self._path("claim"), body,
                               ok_statuses=(410,), timeout=_settings.REQUEST_TIMEOUT + wait,
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
            if not noted and now - started >= _settings.ASK_NOTE_AFTER:
                noted = True
                self._say_waiting(now - started, deadline - now)
            if _WAITED_HEADER in headers:
                continue  # the server waited for us: ask again at once
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, _settings.ASK_BACKOFF[1])

    def _say_waiting(self, waited, left):
        """One line on standard error when :meth:`ask` has waited a while: why nothing can
        start (paused, or ``run_cap`` reached with trials in flight, some perhaps of a client
        that died) and how long it goes on waiting. Best effort."""
        try:
            self.refresh()
        except Exception:  # noqa: BLE001 - a note; the wait goes on either way
            return
        counts = self.data.get("counts") or {}
        in_flight = (counts.get("running") or 0) + (counts.get("queued") or 0)
        if self.state == SweepState.PAUSED:
            why = "it is paused (`hyperdial resume %s` hands out trials again)" % self.id
        else:
            why = ("%d trial%s in flight and nothing else can start (run_cap, or a finite "
                   "space); a trial whose process died ends crashed once the server's run "
                   "timeout passes (60 s by default), then is run again as `retry` says"
                   % (in_flight, "" if in_flight == 1 else "s"))
        _warn("sweep %s: no trial to start for %.0f s: %s; waiting up to %.0f s more"
              % (self.id, waited, why, max(0.0, left)))

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
                answer = _call(self._transport, "POST", trial._path("finish"), body,
                               ok_statuses=(409,))
            if isinstance(answer, _SendError):
                return self._told_crashed(trial, answer, value)
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

    def _told_crashed(self, trial, err, value):
        """A tell refused with ``409`` (``err``): for a trial the server ended crashed (its
        client fell silent for the run timeout), said on standard error and the trial closed
        here as ``crashed``, so a loop goes on with its next trial, as an agent goes on after
        a run crashed under it; any other refusal raises RuntimeError."""
        if not _is_crashed(err):
            raise RuntimeError("hyperdial: " + _error_text(err)) from None
        with self._lock:
            self._open.pop(trial.id, None)
        if not trial._crashed:
            _warn("trial %s of sweep %s %s: %s; the value told (%r) was not stored"
                  % (trial.number, self.id, trial.params, _error_text(err), value))
        trial._crashed = True
        trial.state = RunState.CRASHED
        return trial

    def _fail(self, trial, reason):
        """End ``trial`` ``failed`` with ``reason`` as its error (one finish request)."""
        self._end(trial, 1, RunState.FAILED, reason)

    def _end(self, trial, exit_code, state=None, error=None):
        """End ``trial`` as a process ends its run, with no value told: ``exit_code`` (0 is
        ``finished``, anything else ``failed``, the server's rule), or ``state`` when given,
        and ``error`` (at most 2000 characters) as the run's error. For trials whose run
        reported its own metrics (the W&B module's ``wandb.agent(function=...)``). One finish
        request; the trial's heartbeats stop; ``trial.state`` becomes the server's. Raises
        RuntimeError, as every call does, when the server cannot be reached."""
        body = {"exit_code": int(exit_code)}
        if state is not None:
            body["state"] = state
        if error:
            body["error"] = error[:2000]
        with self._sent(("finish", trial, body)):
            answer = _call(self._transport, "POST", trial._path("finish"), body)
        with self._lock:
            self._open.pop(trial.id, None)
        if isinstance(answer, dict) and answer.get("id") == trial.id:
            trial._update(answer)
        else:
            trial.state = state or (RunState.FINISHED if exit_code == 0 else RunState.FAILED)
        return trial

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
        if isinstance(answer, _SendError) and answer.status == 409:
            # The told trial was ended crashed: nothing was claimed; tell() says so and
            # closes it, then the next trial is asked for alone.
            self._told_crashed(trial, answer, value)
            return self.ask(timeout)
        if isinstance(answer, _SendError):
            if isinstance(answer.payload, dict) and answer.payload.get("state"):
                self.data["state"] = answer.payload["state"]
            return None
        if isinstance(answer, dict) and isinstance(answer.get("run"), dict):
            return self._opened(answer["run"])
        return self.ask(timeout)  # nothing could start at once: wait as ask() does

    def optimize(self, objective, n_trials=None, timeout=None, catch=(), callbacks=(),
                 n_jobs=1):
        """Evaluate ``objective(trial)`` on the sweep's trials, one after another, and tell
        each value back (Optuna's ``study.optimize``).

        ``objective`` takes a :class:`Trial` and returns what :meth:`tell` takes: a number
        (the sweep's metric; ``goal: maximize`` is handled by the server), a dict or list for
        a multi-objective sweep, or None for a failed trial. It may call
        :meth:`Trial.report` to report intermediate values and raise :class:`TrialPruned`
        when :meth:`Trial.should_stop` says so: the trial then ends ``stopped_early``.

        Each trial after the first is told and the next one claimed in one request
        (:meth:`tell_and_ask`), so a trial costs one round trip; every told value is stored
        (and, by default, on disk) before the next trial is chosen. With ``callbacks`` the
        next trial is asked for only after they ran (two round trips a trial), so a callback
        that calls :meth:`stop` starts no further trial, as in Optuna.

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
        the loop goes on, as in Optuna; so does a returned None, NaN or infinity (Optuna
        keeps an infinity as a value; here a metric is finite). Such failures and those
        caught by ``catch`` are reported on standard error with the trial's parameters, one
        line per trial. A value
        returned to a sweep without a metric fails its trial and raises ValueError. After
        each told trial (but not one whose exception is raised again) every ``callbacks``
        item is called as ``callback(sweep, trial)``. A trial's ``value`` is its metric: the
        best of the values it reported and the one returned, as for any run.

        ``n_jobs`` threads run the loop at once (Optuna's ``n_jobs``; ``-1``: one per CPU), each
        on its own trials; ``n_trials`` counts the trials of all of them, and ``objective`` and
        the callbacks are called from several threads. An exception one of them raises again
        stops the others after their trial in progress, then is raised here; Ctrl-C ends this
        thread's trial ``cancelled`` and the others stop after theirs.

        Returns the number of trials told. Raises ValueError for a negative ``n_trials`` or
        ``timeout`` or an ``n_jobs`` that is not a positive integer or -1, TypeError for a
        ``catch`` that is not exception classes.
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
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or \
                not (n_jobs >= 1 or n_jobs == -1):
            raise ValueError("hyperdial: n_jobs must be a positive integer or -1 (one thread "
                             "per CPU), got %r" % (n_jobs,))
        jobs = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
        callbacks = list(callbacks or ())
        slots = _Slots(n_trials, None if timeout is None else time.monotonic() + timeout)
        if jobs == 1:
            return self._optimize_loop(objective, slots, catch, callbacks)
        raised = []

        def worker():
            try:
                self._optimize_loop(objective, slots, catch, callbacks)
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                raised.append(exc)
                slots.stop()

        threads = [threading.Thread(target=worker, name="hyperdial-optimize-%d" % i,
                                    daemon=True) for i in range(1, jobs)]
        for thread in threads:
            thread.start()
        try:
            self._optimize_loop(objective, slots, catch, callbacks)
        except BaseException:
            slots.stop()
            raise
        finally:
            for thread in threads:
                thread.join()
        if raised:
            raise raised[0]
        return slots.told

    def _optimize_loop(self, objective, slots, catch, callbacks):
        """One thread's loop of :meth:`optimize`, taking its trials from ``slots``."""
        if not slots.take():
            return slots.told
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
                    slots.told_one()
                    if not isinstance(exc, catch) or not isinstance(exc, Exception):
                        raise
                    error = exc
                    _warn("trial %s of sweep %s failed with %s: %s: %s (caught; going on)" % (
                        trial.number, self.id, trial.params, type(exc).__name__, exc))
                    for callback in callbacks:
                        callback(self, trial)
                if error is None:
                    slots.told_one()
                    if state is None:
                        said = _no_number(value)
                        if said:
                            _warn("trial %s of sweep %s %s returned %s: it ends failed (the "
                                  "search counts it per `metric.impute`) and the loop goes on"
                                  % (trial.number, self.id, trial.params, said))
                    # A callback may stop the sweep: with callbacks the next trial is asked
                    # for after they ran, so a stop() in one starts no further trial.
                    ask_after = bool(callbacks)
                    try:
                        # A value tell() refuses (not a number) fails the trial and the loop
                        # goes on (Optuna's rule), said on standard error for each trial.
                        if not ask_after and slots.take():
                            next_trial = self.tell_and_ask(trial, value, state, _refused=_warn)
                        else:
                            self.tell(trial, value, state, _refused=_warn)
                            next_trial = None
                    except RuntimeError as err:
                        # The loop ends here and leaves the trial: its heartbeats stop, so the
                        # server ends it crashed after its run timeout, as said below, even
                        # while this process lives on (a notebook).
                        with self._lock:
                            self._open.pop(trial.id, None)
                        raise RuntimeError(
                            "%s\nhyperdial: trial %s of sweep %s (%s) returned %r, which was "
                            "not stored; once the server is back the trial ends crashed, and "
                            "is run again as `retry` says (once, by default)"
                            % (err, trial.number, self.id, trial.params, value)) from None
                    for callback in callbacks:
                        callback(self, trial)
                    if ask_after:
                        next_trial = self.ask() if slots.take() else None
                    trial = next_trial
                else:
                    trial = self.ask() if slots.take() else None
        except KeyboardInterrupt:
            self._settle_interrupted(trial)
            raise
        return slots.told

    def _tell_error(self, trial, exc):
        """End ``trial`` failed because its objective raised ``exc``, with the error's text."""
        text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
        self._fail(trial, text)

    def _claim_telling(self, trial, finish):
        """The claim of :meth:`tell_and_ask`, ending ``trial`` with ``finish`` first: the
        answer (a dict, a 410 _SendError, or None for a 204) and its headers."""
        headers = {}
        body = {"wait_ms": int(_settings.ASK_WAIT * 1000),
                "tell": {"run": trial.id, "finish": finish},
                "claim_key": _claim_key()}
        with self._sent(("claim", body)):
            answer = _call(self._transport, "POST", self._path("claim"), body,
                           ok_statuses=(409, 410),
                           timeout=_settings.REQUEST_TIMEOUT + _settings.ASK_WAIT,
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

    def estimate(self):
        """The model's estimate of the best configuration among the trials with a result, or
        None (fewer than 5 results, or a multi-objective sweep): the dict of
        ``GET /api/v1/sweeps/{id}/estimate`` with its ``"trial"`` (a :class:`Trial`, the run
        whose configuration has the best posterior mean under the Gaussian process ``bayes``
        fits), ``"mean"`` and ``"sd"`` of the metric there, the fitted ``"noise_sd"`` of one
        run's value, ``"observed_best"`` (the id of :meth:`best`'s run) and
        ``"observed_best_mean"``, ``"differs"`` (only when the model gives the estimate at least
        a 0.75 probability of being the better configuration), that ``"p_better"`` and
        ``"results"``. Under a noisy metric
        :meth:`best` is a lucky draw as often as the best configuration; this is not
        (docs/config.md, "The estimated best configuration")."""
        answer = _call(self._transport, "GET", self._path("estimate"),
                       ok_statuses=(404, 409))
        if isinstance(answer, _SendError) or not isinstance(answer, dict):
            return None
        run = answer.get("run")
        if not isinstance(run, dict):
            return None
        out = {k: v for k, v in answer.items() if k != "run"}
        out["trial"] = self._trial_class(self, run)
        return out

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
        # Heartbeats that fail in a row are said once on standard error after
        # HEARTBEAT_WARN_AFTER seconds, and their recovery too: past the server's run timeout
        # without one, an open trial ends crashed, and the program should not learn that
        # only from the refusal of its tell.
        failing_since, warned = None, False
        while not self._beat_stop.wait(min(1.0, _settings.TRIAL_HEARTBEAT / 4)):
            with self._lock:
                trials = list(self._open.values())
                if not trials:
                    self._beat_thread = None
                    return
            now = time.monotonic()
            for trial in trials:
                if now - trial._last_contact < _settings.TRIAL_HEARTBEAT or not trial.open \
                        or trial._crashed:
                    continue
                try:
                    answer = self._transport.request("POST", trial._path("heartbeat"), {})
                except _SendError as err:
                    if _is_crashed(err):
                        self._crashed_while_open(trial, err)
                    elif err.retryable:
                        failing_since = failing_since or time.monotonic()
                        failed_for = time.monotonic() - failing_since
                        if not warned and failed_for >= _settings.HEARTBEAT_WARN_AFTER:
                            warned = True
                            _warn("heartbeats of the open trials of sweep %s have failed for "
                                  "%.0f s (%s); the server ends a trial crashed when it hears "
                                  "nothing of it for its run timeout (`--run-timeout`, 60 s by "
                                  "default); still trying" % (self.id, failed_for, err))
                    continue
                if warned:
                    _warn("heartbeats of sweep %s reach the server again, after %.0f s"
                          % (self.id, time.monotonic() - failing_since))
                failing_since, warned = None, False
                trial._last_contact = time.monotonic()
                if isinstance(answer, dict) and answer.get("stop") is True:
                    trial._stop_reason = answer.get("reason")
                    trial._stop = True

    def _crashed_while_open(self, trial, err):
        """The server ended open ``trial`` crashed (it heard nothing of it for its run
        timeout): said once, and the trial should stop (:meth:`Trial.should_stop`); neither
        its reports nor its tell are stored."""
        trial._crashed = True
        trial._stop_reason = "crashed"
        trial._stop = True
        _warn("trial %s of sweep %s %s: %s; nothing more of it will be stored"
              % (trial.number, self.id, trial.params, _error_text(err)))

    def __repr__(self):
        return "Sweep(id=%r, method=%r, state=%r, server=%r)" % (
            self.id, self.method, self.state, self.server)
