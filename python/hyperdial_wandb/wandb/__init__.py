"""A ``wandb``-compatible module that records to hyperdial.

Scripts written for Weights & Biases (``import wandb; wandb.init(config=defaults);
wandb.config.lr; wandb.log({...})``) run unchanged under ``hyperdial agent --wandb``,
``hyperdial tune --wandb`` (or ``wandb: true`` in the sweep file) and ``hyperdial run
--wandb``: the agent puts the directory holding this package first on the run's
``PYTHONPATH``, so ``import wandb`` finds it instead of the real package, and every call is
mapped onto hyperdial's own client (``hyperdial.init``, ``run.log``, ``run.summary``,
``run.update_config``). Nothing is sent to W&B.

What is mapped:

* ``init(config=, project=, name=, reinit=, settings=, mode=, ...)`` returns a :class:`Run`,
  also usable as a context manager. The sweep's values override the script's defaults, and
  the defaults are stored with the run.
* ``wandb.config`` / ``run.config``: attribute and item access, ``update``, ``get``,
  ``keys``, ``items``, ``as_dict``, ``setdefaults``. Keys set by the sweep are locked: a
  script's update of them is ignored with a warning, as in W&B.
* ``wandb.log(data, step=None, commit=None)``: W&B's step and commit rules; nested dicts are
  flattened with dots (``{"val": {"loss": 1}}`` is ``val.loss``, as W&B shows it).
* ``wandb.summary`` / ``run.summary``: item and attribute set, ``update``, reading.
* ``define_metric(name, step_metric=, summary=, goal=)``: a step metric becomes the x axis
  (the hyperdial step) of the metrics defined with it; ``summary="min"|"max"|"mean"|"last"|
  "first"|"best"`` sets the run summary of the metric to that aggregate.
* ``run.name``, ``id``, ``dir``, ``project``, ``sweep_id``, ``step``, ``finish`` (and at
  exit), ``Settings``, ``wandb.run``, ``login`` (does nothing).
* ``wandb.Api()``: reads runs and sweeps back (``.run(path)``, ``.runs(path, filters=,
  order=)``, ``.sweep(path)``; ``run.config``, ``summary``, ``summary_metrics``, ``state``,
  ``name``, ``id``, ``path``, ``lastHistoryStep``, ``history()``, ``scan_history()``, and
  ``entity``, ``tags``, ``group``, ``job_type``, ``notes``, ``user``, always empty here;
  ``sweep.runs``, ``best_run()``): hyperdial's ``hyperdial.Api``, with W&B's ``history()``
  defaults (:class:`Api`); ``overrides={"base_url": URL}`` names the server.

What hyperdial cannot record (media, tables, artifacts, ``watch``, ``save``, alerts, plots) is
accepted and ignored, with one warning on stderr per name. Standard library only; the
reference is docs/python.md, "W&B scripts".
"""

import atexit
import collections.abc
import fnmatch
import json
import math
import numbers
import os
import sys
import threading
import time

import hyperdial as _hd

#: The W&B client API level this module follows (scripts and libraries compare it).
__version__ = "0.19.0"

__all__ = [
    "init", "log", "finish", "define_metric", "login", "setup", "teardown", "watch", "unwatch",
    "save", "restore", "alert", "use_artifact", "log_artifact", "log_model", "use_model",
    "link_model", "mark_preempting", "Settings", "Run", "Config", "Summary", "Image", "Table",
    "Artifact", "Histogram", "Video", "Audio", "Html", "Object3D", "Molecule", "Plotly",
    "Graph", "plot", "errors", "run", "config", "summary", "sweep", "agent", "Api",
]

_PREFIX = "[hyperdial] "
_warned = set()
_lock = threading.RLock()


def _warn(message):
    try:
        sys.stderr.write(_PREFIX + message + "\n")
        sys.stderr.flush()
    except Exception:  # stderr closed at shutdown
        pass


def _warn_once(key, message):
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    _warn(message)


def _unsupported(name):
    _warn_once("unsupported:" + name,
               "wandb.%s is not recorded by hyperdial; ignored" % name)


# --------------------------------------------------------------------------------------------
# Errors, Settings, login


class errors:  # noqa: N801 -- a namespace, as ``wandb.errors`` is a module
    """``wandb.errors``: the exception classes scripts catch."""

    class Error(Exception):
        """Base of the errors raised by this module."""

    class UsageError(Error):
        """A call in the wrong order (``wandb.log`` before ``wandb.init``)."""

    class CommError(Error):
        """Never raised here (nothing talks to W&B); defined so ``except`` clauses work."""

    class AuthenticationError(CommError):
        """Never raised here; defined so ``except`` clauses work."""


Error = errors.Error


class Settings:
    """``wandb.Settings(...)``: accepts any setting and keeps it as an attribute; none of them
    changes what hyperdial records."""

    def __init__(self, **kwargs):
        for key, value in kwargs.items():
            setattr(self, key, value)

    def update(self, *args, **kwargs):
        """Set more settings (a dict and/or keywords)."""
        for source in args + (kwargs,):
            for key, value in dict(source).items():
                setattr(self, key, value)

    def __repr__(self):
        return "Settings(%s)" % ", ".join("%s=%r" % kv for kv in sorted(vars(self).items()))


def login(*args, **kwargs):
    """Does nothing (there is no W&B account to log in to) and returns True."""
    return True


def setup(*args, **kwargs):
    """Does nothing; returns None."""
    return None


def teardown(*args, **kwargs):
    """Finishes the current run, if any."""
    finish()


# --------------------------------------------------------------------------------------------
# Objects hyperdial does not record


class _Ignored:
    """A W&B object hyperdial cannot record (an image, a table, an artifact...): it takes any
    arguments, warns once per class, and every method call does nothing."""

    _wandb_name = "object"

    def __init__(self, *args, **kwargs):
        _unsupported(self._wandb_name)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _noop

    def __repr__(self):
        return "<wandb.%s (not recorded by hyperdial)>" % self._wandb_name


def _noop(*args, **kwargs):
    return None


def _ignored_class(name):
    return type(name, (_Ignored,), {"_wandb_name": name, "__doc__":
                                    "``wandb.%s``: accepted and ignored." % name})


Image = _ignored_class("Image")
Table = _ignored_class("Table")
Artifact = _ignored_class("Artifact")
Histogram = _ignored_class("Histogram")
Video = _ignored_class("Video")
Audio = _ignored_class("Audio")
Html = _ignored_class("Html")
Object3D = _ignored_class("Object3D")
Molecule = _ignored_class("Molecule")
Plotly = _ignored_class("Plotly")
Graph = _ignored_class("Graph")


class _Plot:
    """``wandb.plot``: every chart function (``line``, ``scatter``, ``confusion_matrix``, ...)
    is accepted and ignored."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def chart(*args, **kwargs):
            _unsupported("plot." + name)
            return None

        return chart


plot = _Plot()


def _ignored_function(name, result=None):
    def function(*args, **kwargs):
        _unsupported(name)
        return result() if callable(result) else result

    function.__name__ = name
    function.__doc__ = "``wandb.%s``: accepted and ignored (warns once)." % name
    return function


watch = _ignored_function("watch")
unwatch = _ignored_function("unwatch")
save = _ignored_function("save")
restore = _ignored_function("restore")
alert = _ignored_function("alert")
use_artifact = _ignored_function("use_artifact", lambda: Artifact())
log_artifact = _ignored_function("log_artifact", lambda: Artifact())
log_model = _ignored_function("log_model")
use_model = _ignored_function("use_model")
link_model = _ignored_function("link_model")
mark_preempting = _ignored_function("mark_preempting")


def sweep(*args, **kwargs):
    """``wandb.sweep`` creates a sweep on W&B's service: not available here."""
    raise errors.UsageError(
        "wandb.sweep() is not available under hyperdial: the sweep is the file given to "
        "`hyperdial tune` or `hyperdial sweep`, and this script is its program")


def agent(*args, **kwargs):
    """``wandb.agent`` runs W&B's agent loop: not available here."""
    raise errors.UsageError(
        "wandb.agent() is not available under hyperdial: run `hyperdial agent SWEEP_ID` "
        "(or `hyperdial tune sweep.yaml`), which starts this script once per run")


# --------------------------------------------------------------------------------------------
# Values


def _number(value):
    """``value`` as something hyperdial records as a metric (a number, or None for NaN), or
    raise ValueError."""
    if value is None or isinstance(value, (bool, numbers.Real)):
        return value
    item = getattr(value, "item", None)  # numpy scalars, 0-d arrays, one-element tensors
    if callable(item) and not isinstance(value, (str, bytes, bytearray)):
        size = getattr(value, "size", 1)
        size = size() if callable(size) else size
        try:
            if int(size) == 1:
                scalar = item()
                if isinstance(scalar, (bool, numbers.Real)):
                    return scalar
        except Exception:
            pass
    raise ValueError(value)


def _flatten(data, prefix, out):
    for key, value in data.items():
        name = prefix + str(key)
        if isinstance(value, collections.abc.Mapping):
            _flatten(value, name + ".", out)
        else:
            out[name] = value
    return out


def _finite(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# Config


def _config_source(config):
    """``init(config=...)`` as a dict: a dict, an argparse.Namespace (or anything with
    ``__dict__``), or the path of a JSON or YAML file (YAML needs PyYAML)."""
    if config is None:
        return {}
    if isinstance(config, collections.abc.Mapping):
        return dict(config)
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            try:
                import yaml  # noqa: PLC0415 -- optional, only for a YAML config file
            except ImportError:
                raise errors.UsageError(
                    "wandb.init(config=%r): reading a YAML file needs PyYAML" % path) from None
            data = yaml.safe_load(text)
        if not isinstance(data, collections.abc.Mapping):
            raise errors.UsageError("wandb.init(config=%r): the file holds no mapping" % path)
        # W&B's config-defaults.yaml style: {"lr": {"value": 0.1}} means lr = 0.1.
        return {k: (v["value"] if isinstance(v, collections.abc.Mapping) and set(v) <= {
            "value", "desc"} and "value" in v else v) for k, v in data.items()}
    if hasattr(config, "__dict__"):
        return dict(vars(config))
    raise TypeError("wandb.init: config must be a dict, an argparse.Namespace or a file "
                    "path, got %s" % type(config).__name__)


class Config:
    """``wandb.config`` / ``run.config``: the run's configuration.

    Read with ``config.lr``, ``config["lr"]``, ``config.get("lr", 0.1)``, ``"lr" in config``,
    ``keys()``, ``items()``, ``values()``, iteration, ``dict(config)`` and ``as_dict()``.
    Write with ``config.lr = x``, ``config["lr"] = x``, ``update(dict_or_namespace)`` and
    ``setdefaults(dict)``. A key the sweep set is locked: writing it keeps the sweep's value
    and warns once per key, as W&B does. Writes are stored with the run.
    """

    def __init__(self):
        object.__setattr__(self, "_run", None)
        object.__setattr__(self, "_data", {})

    def _attach(self, hd_run):
        object.__setattr__(self, "_run", hd_run)
        object.__setattr__(self, "_data", hd_run.config)

    def _write(self, values):
        values = dict(values)
        if not values:
            return
        hd_run = self._run
        if hd_run is None:
            raise errors.UsageError("wandb.config cannot be set before wandb.init()")
        for key in hd_run.update_config(values):
            _warn_once("locked:" + str(key),
                       "config item %r is set by the sweep; the script's value is ignored (as "
                       "in W&B)" % (key,))

    # reading

    def __getitem__(self, key):
        return self._data[key]

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError("wandb.config has no key %r (keys: %s)" % (
                name, ", ".join(map(str, self._data)) or "none")) from None

    def __contains__(self, key):
        return key in self._data

    def __iter__(self):
        return iter(list(self._data))

    def __len__(self):
        return len(self._data)

    def keys(self):
        """The config's keys."""
        return self._data.keys()

    def items(self):
        """The config's (key, value) pairs."""
        return self._data.items()

    def values(self):
        """The config's values."""
        return self._data.values()

    def get(self, key, default=None):
        """``config[key]``, or ``default`` when the key is missing."""
        return self._data.get(key, default)

    def as_dict(self):
        """A deep copy made of plain dicts."""
        return self._data.as_dict() if hasattr(self._data, "as_dict") else dict(self._data)

    # writing

    def __setitem__(self, key, value):
        self._write({key: value})

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self._write({name: value})

    def update(self, d=None, allow_val_change=None, **kwargs):
        """Set keys from a dict, an ``argparse.Namespace`` and/or keywords (sweep keys keep
        the sweep's values)."""
        values = dict(_config_source(d)) if d is not None else {}
        values.update(kwargs)
        self._write(values)

    def setdefaults(self, d):
        """Set the keys of ``d`` that the config does not hold yet."""
        self._write({k: v for k, v in _config_source(d).items() if k not in self._data})

    def setdefault(self, key, default=None):
        """``config[key]``, first setting it to ``default`` when it is missing."""
        if key not in self._data:
            self._write({key: default})
        return self._data[key]

    def persist(self):
        """Does nothing: writes are stored at once."""

    def __repr__(self):
        return repr(self.as_dict())


# --------------------------------------------------------------------------------------------
# Summary


class Summary:
    """``wandb.summary`` / ``run.summary``: the run's summary, the last logged value of every
    metric overlaid by values set here (``summary["best"] = x``, ``summary.best = x``,
    ``update(dict)``). Values must be JSON-like; objects hyperdial cannot record are ignored
    with a warning."""

    def __init__(self):
        object.__setattr__(self, "_run", None)

    def _attach(self, hd_run):
        object.__setattr__(self, "_run", hd_run)

    def _target(self):
        if self._run is None:
            raise errors.UsageError("wandb.summary cannot be used before wandb.init()")
        return self._run.summary

    def __setitem__(self, key, value):
        self.update({key: value})

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.update({name: value})

    def update(self, d=None, **kwargs):
        """Set several summary values."""
        values = dict(d or {}, **kwargs)
        kept = {}
        for key, value in values.items():
            if isinstance(value, _Ignored):
                _unsupported(value._wandb_name + " in the summary")
                continue
            kept[str(key)] = value
        if kept:
            self._target().update(kept)

    def __getitem__(self, key):
        return self._target()[key]

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._target()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __contains__(self, key):
        return self._run is not None and key in self._run.summary

    def __iter__(self):
        return iter(list(self._target()))

    def __len__(self):
        return len(self._target())

    def get(self, key, default=None):
        """``summary[key]``, or ``default``."""
        return self._target().get(key, default)

    def keys(self):
        """The summary's keys."""
        return self._target().keys()

    def items(self):
        """The summary's (key, value) pairs."""
        return self._target().items()

    def __repr__(self):
        return repr(dict(self._target().as_dict())) if self._run is not None else "{}"


# --------------------------------------------------------------------------------------------
# Metric definitions

_SUMMARIES = ("min", "max", "mean", "last", "first", "best", "copy", "none")


class _Metric:
    """What ``define_metric`` returns: the definition, as attributes."""

    def __init__(self, name, step_metric, summary, goal, hidden):
        self.name = name
        self.step_metric = step_metric
        self.summary = summary
        self.goal = goal
        self.hidden = hidden

    def __repr__(self):
        return "<wandb metric %r step_metric=%r summary=%r goal=%r>" % (
            self.name, self.step_metric, self.summary, self.goal)


class _Aggregate:
    """The running min, max, mean, first and last of one metric's finite values."""

    def __init__(self):
        self.count = 0
        self.total = 0.0
        self.min = self.max = self.first = self.last = None

    def add(self, value):
        if value is None:
            return
        self.count += 1
        self.total += value
        self.last = value
        if self.first is None:
            self.first = value
        self.min = value if self.min is None else min(self.min, value)
        self.max = value if self.max is None else max(self.max, value)

    def value(self, kind, goal):
        if kind == "mean":
            return self.total / self.count if self.count else None
        if kind == "best":
            if goal in ("minimize", "min"):
                return self.min
            if goal in ("maximize", "max"):
                return self.max
            return self.last
        if kind == "copy":
            return self.last
        return getattr(self, kind)


# --------------------------------------------------------------------------------------------
# Run


class Run:
    """A run, as ``wandb.init`` returns it (also ``wandb.run``).

    Attributes: ``id``, ``name``, ``project``, ``entity`` (None), ``dir`` (a directory for the
    run's files), ``path``, ``url``, ``sweep_id``, ``step``, ``config``, ``summary``,
    ``group``, ``job_type``, ``tags``, ``notes``, ``settings``, ``mode``. Methods: ``log``,
    ``define_metric``, ``finish``, and the ignored ones (``watch``, ``save``, ``alert``,
    artifacts). A context manager: leaving the block finishes the run.
    """

    def __init__(self, hd_run, name, settings, group, job_type, tags, notes, directory):
        self._hd = hd_run
        self.config = Config()
        self.config._attach(hd_run)
        self.summary = Summary()
        self.summary._attach(hd_run)
        self.id = hd_run.id or "disabled"
        self.name = name or self.id
        self.project = hd_run.project
        self.entity = None
        self.sweep_id = hd_run.sweep_id
        self.settings = settings
        self.group = group
        self.job_type = job_type
        self.tags = tuple(tags or ())
        self.notes = notes
        self.mode = hd_run.mode
        self.resumed = False
        self.start_time = time.time()
        self.path = "%s/%s" % (self.project, self.id)
        self.url = ("%s/runs/%s" % (hd_run.server, hd_run.id)) if hd_run.server else None
        self.dir = self._make_dir(directory)
        self._row = {}
        self._step = 0
        self._metrics = []  # _Metric, in definition order
        self._aggregates = {}  # metric name -> _Aggregate
        self._last = {}  # last logged value of every metric (for step metrics)
        self._finished = False

    def _make_dir(self, root):
        """The run's file directory: beside the run's config file under an agent
        (``<state dir>/runs/<run>/files``), else ``<root>/wandb/run-<time>-<id>/files`` with
        ``root`` from ``init(dir=)``, ``WANDB_DIR`` or ``.hyperdial``."""
        config_file = os.environ.get("HYPERDIAL_CONFIG", "").strip()
        if root is None and config_file:
            directory = os.path.join(os.path.dirname(os.path.abspath(config_file)), "files")
        else:
            root = root or os.environ.get("WANDB_DIR") or ".hyperdial"
            directory = os.path.join(root, "wandb", "run-%s-%s" % (
                time.strftime("%Y%m%d_%H%M%S"), self.id), "files")
        directory = os.path.abspath(directory)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as err:
            _warn("cannot create the run directory %s (%s)" % (directory, err))
        return directory

    # ---------------------------------------------------------------- logging

    @property
    def step(self):
        """The step the next committed row gets (W&B's ``_step``)."""
        return self._step

    def log(self, data, step=None, commit=None, sync=None):
        """Record a row of values, with W&B's rules.

        Without ``step`` the values join the current row, which is committed (sent, and the
        step advances) unless ``commit=False``. With ``step`` larger than the current one the
        pending row is committed first and the values start the row of ``step``, committed
        only when ``commit=True`` (else by the next call that moves on, or by ``finish``); a
        ``step`` smaller than the current one is ignored with a warning. Nested dicts are
        flattened with dots. Values that are not numbers (media, tables, strings, lists) are
        ignored with one warning per key.
        """
        if self._finished:
            _warn_once("log-after-finish", "wandb.log() after finish() is ignored")
            return
        if not isinstance(data, collections.abc.Mapping):
            raise TypeError("wandb.log() takes a dict, got %s" % type(data).__name__)
        values = {}
        for key, value in _flatten(data, "", {}).items():
            try:
                values[key] = _number(value)
            except ValueError:
                kind = "wandb." + value._wandb_name if isinstance(value, _Ignored) else \
                    type(value).__name__
                _warn_once("value:" + key,
                           "wandb.log: %r holds a %s, not a number; hyperdial does not record "
                           "it (ignored)" % (key, kind))
        with _lock:
            if step is not None:
                if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
                    _warn_once("step-type", "wandb.log: step must be a non-negative integer, "
                                            "got %r; ignored" % (step,))
                    step = None
                elif step < self._step:
                    _warn_once("step-back:%d" % step,
                               "wandb.log: step %d is below the current step %d; the data is "
                               "ignored (as in W&B)" % (step, self._step))
                    return
                elif step > self._step:
                    self._commit()
                    self._step = int(step)
            self._row.update(values)
            if commit or (commit is None and step is None):
                self._commit()

    def _commit(self):
        """Send the pending row: one point at the step, plus one per step metric in it."""
        row, self._row = self._row, {}
        if not row:
            return
        step = self._step
        self._step += 1
        self._last.update(row)
        groups = {step: {}}
        for key, value in row.items():
            step_metric = self._definition(key)[0]
            at = step
            if step_metric and step_metric != key:
                x = row.get(step_metric, self._last.get(step_metric))
                at = self._step_of(step_metric, x, step)
            groups.setdefault(at, {})[key] = value
        for at, values in sorted(groups.items()):
            if values:
                self._hd.log(values, step=at)
        self._update_summaries(row)

    @staticmethod
    def _step_of(step_metric, x, default):
        number = _finite(x)
        if number is not None and number >= 0 and number == int(number):
            return int(number)
        _warn_once("step-metric:" + step_metric,
                   "step metric %r has a value (%r) that is not a non-negative integer; those "
                   "metrics are recorded at the run's step instead" % (step_metric, x))
        return default

    def _definition(self, key):
        """(step metric, summary kinds, goal) of metric ``key``: what the definitions naming
        it say, over what matching globs say; a later definition wins."""
        step_metric, kinds, goal = None, [], None
        for exact in (False, True):
            for metric in self._metrics:
                if exact:
                    matches = metric.name == key
                else:
                    matches = "*" in metric.name and fnmatch.fnmatchcase(key, metric.name)
                if matches:
                    step_metric = metric.step_metric or step_metric
                    kinds = metric.summary or kinds
                    goal = metric.goal or goal
        return step_metric, kinds, goal

    def _update_summaries(self, row):
        updates = {}
        for key, value in row.items():
            _, kinds, goal = self._definition(key)
            kinds = [k for k in kinds if k != "none"]
            if not kinds:
                continue
            aggregate = self._aggregates.setdefault(key, _Aggregate())
            aggregate.add(_finite(value))
            if len(kinds) == 1:
                result = aggregate.value(kinds[0], goal)
                if result is not None:
                    updates[key] = result
            else:
                for kind in kinds:
                    result = aggregate.value(kind, goal)
                    if result is not None:
                        updates["%s.%s" % (key, kind)] = result
        if updates:
            self._hd.summary.update(updates)

    def define_metric(self, name, step_metric=None, step_sync=None, hidden=None, summary=None,
                      goal=None, overwrite=None, **kwargs):
        """Define how a metric (or a glob such as ``"val/*"``) is recorded.

        ``step_metric``: the metric whose last value is the step (the x axis) of this one; it
        must hold non-negative integers (epochs, global steps). ``summary``: ``"min"``,
        ``"max"``, ``"mean"``, ``"last"``, ``"first"``, ``"best"`` (with ``goal``
        ``"minimize"`` or ``"maximize"``), ``"copy"`` or ``"none"``, or several joined by
        commas; one aggregate becomes the summary value of the metric (and so what a sweep
        reads from the summary), several are stored as ``name.min``, ``name.max``, ....
        ``goal``: ``"minimize"`` or ``"maximize"``. ``step_sync``, ``hidden`` and
        ``overwrite`` are accepted and have no effect.
        """
        if not isinstance(name, str) or not name:
            raise errors.UsageError("define_metric: the name must be a non-empty string")
        kinds = []
        if summary:
            kinds = [k.strip() for k in str(summary).split(",") if k.strip()]
            unknown = [k for k in kinds if k not in _SUMMARIES]
            if unknown:
                raise errors.UsageError("define_metric(%r): unknown summary %s (use %s)" % (
                    name, ", ".join(map(repr, unknown)), ", ".join(_SUMMARIES)))
            if "none" in kinds:
                _warn_once("summary-none", "define_metric(summary='none') is not honoured: "
                                           "hyperdial's summary always holds the last value")
            if "best" in kinds and goal not in ("minimize", "maximize", "min", "max"):
                _warn_once("best-goal:" + name,
                           "define_metric(%r, summary='best') needs goal='minimize' or "
                           "'maximize'; using the last value" % name)
        if goal is not None and goal not in ("minimize", "maximize", "min", "max"):
            raise errors.UsageError("define_metric(%r): goal must be 'minimize' or 'maximize'"
                                    % name)
        metric = _Metric(name, step_metric, kinds, goal, hidden)
        with _lock:
            if step_metric and not any(m.name == step_metric for m in self._metrics):
                self._metrics.append(_Metric(step_metric, None, [], None, None))
            self._metrics.append(metric)
        return metric

    # ---------------------------------------------------------------- the end

    def finish(self, exit_code=None, quiet=None):
        """Send the pending row and the summaries, and end the run (once)."""
        with _lock:
            if self._finished:
                return
            self._commit()
            self._finished = True
        self._hd.finish(exit_code=0 if exit_code is None else exit_code)
        _forget(self)

    def _flush_pending(self):
        with _lock:
            if not self._finished:
                self._commit()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.finish(exit_code=_hd.exit_code_of(exc_type, exc))
        return False

    # ---------------------------------------------------------------- ignored

    watch = staticmethod(watch)
    unwatch = staticmethod(unwatch)
    save = staticmethod(save)
    restore = staticmethod(restore)
    alert = staticmethod(alert)
    use_artifact = staticmethod(use_artifact)
    log_artifact = staticmethod(log_artifact)
    log_model = staticmethod(log_model)
    use_model = staticmethod(use_model)
    link_model = staticmethod(link_model)
    mark_preempting = staticmethod(mark_preempting)

    def log_code(self, *args, **kwargs):
        """Accepted and ignored."""
        _unsupported("log_code")

    def __repr__(self):
        return "<wandb.Run %s (hyperdial, %s)>" % (self.id, self.mode)


# --------------------------------------------------------------------------------------------
# Reading runs back: wandb.Api


def _thinned(rows, samples):
    """At most ``samples`` of ``rows``, evenly spaced, the first and the last kept."""
    count = len(rows)
    if count <= samples:
        return rows
    if samples == 1:
        return [rows[-1]]
    return [rows[i * (count - 1) // (samples - 1)] for i in range(samples)]


class PublicRun(_hd.Trial):
    """A run read back through :class:`Api` (W&B's ``wandb.apis.public.Run``): hyperdial's
    :class:`hyperdial.Trial` (``id``, ``state``, ``config``, ``summary``, ``sweep``,
    ``project``, ``created_at``, ``url``, ``scan_history()``, ...), whose ``name`` is never
    None (the run's id when it has no name, as W&B always shows one) and whose
    :meth:`history` takes W&B's arguments and defaults."""

    def __init__(self, sweep, run, transport=None):
        super().__init__(sweep, run, transport=transport)
        self.name = self.name or self.id

    @property
    def display_name(self):
        """The run's name (W&B's ``display_name``)."""
        return self.name

    @property
    def entity(self):
        """W&B's entity (a team or user): always ``""``, hyperdial has no entities."""
        return ""

    @property
    def path(self):
        """W&B's ``[entity, project, run_id]``: ``["", project, id]`` (no entities here);
        ``"/".join(run.path)`` is a path :meth:`Api.run` reads back."""
        return [self.entity, self.project or "", self.id]

    @property
    def summary_metrics(self):
        """The run's summary as a plain dict (W&B's ``summary_metrics``): ``run.summary``."""
        return dict(self.summary)

    @property
    def tags(self):
        """W&B's tags: always ``[]``, hyperdial has no tags."""
        return []

    @property
    def group(self):
        """W&B's run group: always ``None``, hyperdial has no groups."""
        return None

    @property
    def job_type(self):
        """W&B's job type: always ``None``, hyperdial has no job types."""
        return None

    @property
    def notes(self):
        """W&B's run notes: always ``None``, hyperdial keeps notes per sweep, not per run."""
        return None

    @property
    def user(self):
        """W&B's user who made the run: always ``None``, hyperdial has no users."""
        return None

    @property
    def lastHistoryStep(self):  # noqa: N802 -- W&B's name
        """The last step the run logged, ``-1`` when it logged none (W&B's rule): from the
        run's ``steps`` (the next automatic step) as the server last sent it."""
        steps = self.data.get("steps")
        return steps - 1 if isinstance(steps, int) and steps > 0 else -1

    def history(self, samples=500, keys=None, x_axis="_step", pandas=True, stream="default"):
        """The run's metric history as W&B's ``run.history()`` gives it: at most ``samples``
        rows (evenly spaced by position, the first and the last kept), each a dict of
        ``_step``, ``_timestamp`` and the metrics logged at that step; with ``keys`` (a list)
        only those metrics (and ``x_axis``), and only the rows holding every one of them. A
        ``pandas.DataFrame`` of those rows when ``pandas`` is true and pandas can be imported
        (else the list, with a warning, as W&B does); the list with ``pandas=False``.
        ``stream="system"`` (or any other than ``"default"``) reads system metrics, which
        hyperdial does not record: no rows, with a warning. Rows carry no ``_runtime``."""
        if keys is not None and not isinstance(keys, list):
            raise ValueError("keys must be specified in a list")
        if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) \
                or samples < 1:
            raise ValueError("history(samples=%r): samples is a positive integer" % (samples,))
        if stream != "default":
            if keys:
                raise ValueError("stream must be default when specifying keys")
            _warn_once("history-stream", "run.history(stream=%r): hyperdial records no system "
                                         "metrics; no rows" % (stream,))
            rows = []
        else:
            needed = None
            if keys:
                needed = ([x_axis] if x_axis not in ("_step", "_timestamp") else []) + [
                    k for k in keys if k != x_axis]
            # Called from here as history() calls it, so a warning about a key the run never
            # logged points at the caller's line.
            rows = _hd._history._read_history(self._history_transport(), self.id, needed)
            if needed:
                rows = [row for row in rows if all(k in row for k in needed)]
            rows = _thinned(rows, int(samples))
        if pandas:
            try:
                import pandas as pd  # noqa: PLC0415 -- optional, as in W&B
            except ImportError:
                _warn_once("history-pandas", "pandas cannot be imported: run.history() returns "
                                             "a list of dicts (call it with pandas=False)")
                return rows
            return pd.DataFrame.from_records(rows)
        return rows


class PublicSweep(_hd.Sweep):
    """A sweep read back through :class:`Api` (W&B's ``wandb.apis.public.Sweep``):
    hyperdial's :class:`hyperdial.Sweep` (``id``, ``name``, ``project``, ``config``,
    ``state``, ``runs``, ``best_run(order=None)``, ...) whose runs are :class:`PublicRun`."""

    _trial_class = PublicRun


class Api(_hd.Api):
    """``wandb.Api()``: reads runs and sweeps back from the hyperdial server, from any
    process (a notebook, a report script, a training script run by an agent).

    It is :class:`hyperdial.Api` (``run(path)``, ``runs(path, filters=, order=)``,
    ``sweep(path)``; W&B paths ``"entity/project/id"`` accepted, entity ignored), giving
    :class:`PublicRun` and :class:`PublicSweep` objects. The server is ``server=``, else
    W&B's ``overrides={"base_url": URL}``, else ``HYPERDIAL_SERVER`` (set for the runs an
    agent starts), else ``http://127.0.0.1:8337``, else a local server on this directory's
    store. ``token=``, else ``api_key=``, is the bearer token (default ``HYPERDIAL_TOKEN``).
    ``overrides`` may also hold ``entity`` and ``organization`` (ignored) and ``project``
    (what :meth:`runs` reads without a path); another key raises ValueError naming it.
    ``timeout`` is accepted and changes nothing. Other W&B methods (``artifact``,
    ``project``, ``reports``, ...) raise AttributeError saying what exists."""

    _trial_class = PublicRun
    _sweep_class = PublicSweep

    #: The keys of W&B's ``overrides`` understood here: ``base_url`` names the server;
    #: ``entity`` and ``organization`` are ignored (as the entity of every path);
    #: ``project`` is the project :meth:`runs` reads without a path.
    OVERRIDE_KEYS = ("base_url", "entity", "organization", "project")

    def __init__(self, overrides=None, timeout=None, api_key=None, server=None, token=None,
                 **kwargs):
        overrides = dict(overrides or {})
        unknown = sorted(str(k) for k in overrides if k not in self.OVERRIDE_KEYS)
        if unknown:
            raise ValueError(
                "wandb.Api(overrides=): %s not understood under hyperdial; the keys it takes "
                "are %s (base_url names the hyperdial server)" % (
                    ", ".join(repr(k) for k in unknown), ", ".join(self.OVERRIDE_KEYS)))
        base_url = overrides.get("base_url")
        if server is not None and base_url is not None and \
                _hd._transport._server_from(server) != _hd._transport._server_from(base_url):
            raise ValueError("wandb.Api: server=%r and overrides={'base_url': %r} name two "
                             "servers; give one" % (server, base_url))
        self._default_project = overrides.get("project") or None
        super().__init__(server=server or base_url,
                         token=token if token is not None else api_key)

    def runs(self, path=None, filters=None, order="+created_at", per_page=None,
             include_sweeps=True, **kwargs):
        """:meth:`hyperdial.Api.runs`; without ``path``, the project of
        ``overrides={"project": ...}`` when one was given (W&B's default), else every
        project."""
        if path is None:
            path = self._default_project
        return super().runs(path, filters=filters, order=order, per_page=per_page,
                            include_sweeps=include_sweeps, **kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(
            "wandb.Api().%s is not available under hyperdial, which reads runs and sweeps "
            "back: use run(path), runs(path, filters=, order=) or sweep(path)" % name)

    def __repr__(self):
        return "<wandb.Api (hyperdial, %s)>" % self.server


# --------------------------------------------------------------------------------------------
# Module level

run = None
config = Config()
summary = Summary()
_hooks = False


def _forget(r):
    global run
    with _lock:
        if run is r:
            run = None


def _at_exit():
    # Runs before the client's own exit handler (registered earlier), which then finishes
    # the run with the right exit code: only the pending row is sent here.
    r = run
    if r is not None:
        r._flush_pending()


def _mode(mode, settings):
    mode = mode or getattr(settings, "mode", None) or os.environ.get("WANDB_MODE") or "online"
    mode = str(mode).lower()
    if mode == "disabled":
        return "disabled"
    if mode in ("offline", "dryrun") and not os.environ.get("HYPERDIAL_RUN_ID"):
        return "offline"
    return None


def init(project=None, entity=None, config=None, name=None, reinit=None, settings=None,
         mode=None, dir=None, group=None, job_type=None, tags=None, notes=None,
         config_exclude_keys=None, config_include_keys=None, id=None, resume=None,
         **kwargs):
    """Start a run (or return the current one) and make it ``wandb.run``.

    ``config`` (a dict, an ``argparse.Namespace`` or a JSON/YAML file path) holds the
    script's defaults; under a sweep its values override them, and both are stored with the
    run. ``project`` and ``name`` label a run started outside a sweep (default
    ``WANDB_PROJECT`` and ``WANDB_NAME``). ``mode="disabled"`` (or ``WANDB_MODE=disabled``)
    records nothing; ``"offline"`` outside an agent writes hyperdial's offline file. A run
    still open is returned as is unless ``reinit`` asks for a new one (``True``,
    ``"finish_previous"``, ``"create_new"``), which finishes it first. ``entity``, ``id``,
    ``resume``, ``settings`` and other W&B options are accepted and have no effect.
    """
    global run, summary, _hooks  # noqa: PLW0603 -- wandb's module-level state
    with _lock:
        if run is not None and not run._finished:
            if reinit in (None, False, "default", "return_previous"):
                return run
            run.finish()
        if isinstance(settings, collections.abc.Mapping):
            settings = Settings(**settings)
        defaults = _config_source(config)
        if config_include_keys:
            defaults = {k: v for k, v in defaults.items() if k in set(config_include_keys)}
        if config_exclude_keys:
            defaults = {k: v for k, v in defaults.items() if k not in set(config_exclude_keys)}
        project = project or os.environ.get("WANDB_PROJECT") or None
        name = name or os.environ.get("WANDB_NAME") or None
        hd_run = _hd.init(config=defaults, project=project, name=name,
                          mode=_mode(mode, settings))
        new = Run(hd_run, name, settings or Settings(), group, job_type, tags, notes,
                  None if dir is None else os.fspath(dir))
        run = new
        globals()["config"] = new.config  # `config` is also this function's parameter
        summary = new.summary
        if not _hooks:
            _hooks = True
            atexit.register(_at_exit)
        return new


def _current(what):
    if run is None:
        raise errors.UsageError("You must call wandb.init() before wandb.%s()" % what)
    return run


def log(data, step=None, commit=None, sync=None):
    """``wandb.run.log(...)``; see :meth:`Run.log`."""
    _current("log").log(data, step=step, commit=commit)


def define_metric(name, step_metric=None, step_sync=None, hidden=None, summary=None,
                  goal=None, overwrite=None, **kwargs):
    """``wandb.run.define_metric(...)``; see :meth:`Run.define_metric`."""
    return _current("define_metric").define_metric(
        name, step_metric=step_metric, step_sync=step_sync, hidden=hidden, summary=summary,
        goal=goal, overwrite=overwrite)


def finish(exit_code=None, quiet=None):
    """Finish the current run, if any."""
    if run is not None:
        run.finish(exit_code=exit_code)
