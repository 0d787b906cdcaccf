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
  also usable as a context manager. The sweep's values override the script's defaults, which
  override ``config-defaults.yaml`` (W&B's config file), and the defaults are stored with the
  run.
* ``wandb.config`` / ``run.config``: attribute and item access, ``update``, ``get``,
  ``keys``, ``items``, ``as_dict``, ``setdefaults``. Keys set by the sweep are locked: a
  script's update of them is ignored with a warning, as in W&B.
* ``wandb.log(data, step=None, commit=None)``: W&B's step and commit rules; nested dicts are
  flattened with dots (``{"val": {"loss": 1}}`` is ``val.loss``, as W&B shows it).
* ``wandb.summary`` / ``run.summary``: item and attribute set, ``update``, reading.
* ``define_metric(name, step_metric=, step_sync=, summary=, goal=)``: as in W&B, a step
  metric is the charts' x axis and leaves the rows and their steps alone; its last value is
  added to a row that logs a metric defined with it but not the step metric itself
  (``step_sync``, on by default); ``summary="min"|"max"|"mean"|"last"|"first"|"best"`` sets
  the run summary of the metric to that aggregate.
* ``run.name``, ``id``, ``dir``, ``project``, ``sweep_id``, ``step``, ``get_url()``,
  ``finish`` (and at exit), ``Settings``, ``wandb.run``, ``login`` (does nothing),
  ``termlog``/``termwarn``/``termerror``, and the submodule paths integrations import
  (``wandb.sdk.lib.config_util``, ``wandb.sdk.wandb_run``, ``wandb.errors``, ...), and
  the callbacks of ``wandb.integration.keras`` / ``wandb.keras``, ``xgboost`` and
  ``lightgbm``.
* ``sweep(config)`` and ``agent(sweep_id, function=, count=)``: W&B's notebook pattern, a
  sweep created and run from one process (see "Sweeps driven from this process" below).
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
import copy
import fnmatch
import json
import math
import numbers
import os
import sys
import threading
import time
import urllib.parse

import hyperdial as _hd

#: The W&B client API level this module follows (scripts and libraries compare it).
__version__ = "0.19.0"

__all__ = [
    "init", "log", "finish", "define_metric", "login", "setup", "teardown", "watch", "unwatch",
    "save", "restore", "alert", "use_artifact", "log_artifact", "log_model", "use_model",
    "link_model", "mark_preempting", "Settings", "Run", "Config", "Summary", "Image", "Table",
    "Artifact", "Histogram", "Video", "Audio", "Html", "Object3D", "Molecule", "Plotly",
    "Graph", "plot", "errors", "run", "config", "summary", "sweep", "agent", "Api",
    "termlog", "termwarn", "termerror", "require", "RunDisabled", "AgentRunStopped",
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


def _declare_exit(exit_code):
    """Tell the process that started this run (``hyperdial agent``, ``tune``, ``hyperdial
    run``) the exit code the script ended the run with, through the file
    ``HYPERDIAL_EXIT_FILE`` names; False when there is no such file to write."""
    path = os.environ.get("HYPERDIAL_EXIT_FILE", "").strip()
    if not path:
        return False
    try:
        code = int(exit_code)
    except (TypeError, ValueError):
        code = 1
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write("%d\n" % code)
    except OSError as err:
        _warn("cannot record wandb.finish(exit_code=%r) in %s (%s)" % (exit_code, path, err))
        return False
    return True


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


def _term(level, string, newline, repeat, prefix):
    if not repeat:
        with _lock:
            if ("term", string) in _warned:
                return
            _warned.add(("term", string))
    try:
        sys.stderr.write(("wandb: " if prefix else "") + level + str(string) +
                         ("\n" if newline else ""))
        sys.stderr.flush()
    except Exception:  # stderr closed at shutdown
        pass


def termlog(string="", newline=True, repeat=True, prefix=True):
    """Print ``string`` on standard error as W&B does (``wandb: ...``); with
    ``repeat=False`` only the first time."""
    _term("", string, newline, repeat, prefix)


def termwarn(string, newline=True, repeat=True, prefix=True):
    """``termlog`` of a warning (``wandb: WARNING ...``)."""
    _term("WARNING ", string, newline, repeat, prefix)


def termerror(string, newline=True, repeat=True, prefix=True):
    """``termlog`` of an error (``wandb: ERROR ...``)."""
    _term("ERROR ", string, newline, repeat, prefix)


def login(*args, **kwargs):
    """Does nothing (there is no W&B account to log in to) and returns True."""
    return True


def require(*args, **kwargs):
    """W&B's opt-in to SDK features (``wandb.require("service")``, which PyTorch Lightning's
    logger calls): does nothing."""
    return None


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


class _Nothing:
    """What the methods of an ignored object return: callable, with any attribute, a context
    manager (``with artifact.new_file("m.txt") as f: f.write(...)``), empty and false."""

    def __call__(self, *args, **kwargs):
        return self

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0

    def __repr__(self):
        return "<nothing: not recorded by hyperdial>"


_NOTHING = _Nothing()


def _noop(*args, **kwargs):
    return _NOTHING


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
            return _Chart("plot." + name)

        return chart


class _Chart(_Ignored):
    """What a ``wandb.plot`` function returns: an ignored object (its function already
    warned), so ``wandb.log({"roc": wandb.plot.roc_curve(...)})`` records nothing for it."""

    def __init__(self, name):  # noqa: D107 -- warned by the chart function
        self._wandb_name = name


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


def mark_preempting():
    """``wandb.mark_preempting()``: under an agent, a run whose process then fails ends
    interrupted and its sweep queues it again, as W&B requeues a preempted run (a process that
    exits 0 still finishes it); outside an agent nothing queues a run again, which one warning
    says."""
    from hyperdial import _run as _hd_run  # noqa: PLC0415 -- the client's own helper

    if not _hd_run._mark_preempting():
        _warn_once("mark-preempting", "wandb.mark_preempting(): outside an agent nothing queues "
                   "this run again (under `hyperdial agent` its sweep does when the process "
                   "then fails)")


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


def _is_ignored(value):
    """Whether ``value`` is an object hyperdial does not record (``wandb.Image``, a chart...)
    or a list or tuple of them (``[wandb.Image(a), wandb.Image(b)]``), whose class already
    warned once."""
    if isinstance(value, _Ignored):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(v, _Ignored) for v in value)


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
            if _is_ignored(value):
                continue  # its class warned when it was made
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

    def __init__(self, name, step_metric, summary, goal, hidden, step_sync=None):
        self.name = name
        self.step_metric = step_metric
        self.step_sync = step_sync
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

    def seed(self, kinds, goal, summary, key):
        """Take in the extremes a resumed run's summary already holds for ``key`` (what an
        earlier process aggregated), so ``min``, ``max`` and ``best`` go on over the whole
        run; ``mean``, ``first`` and ``last`` start again (their inputs are not kept)."""
        for kind in kinds:
            prior = summary.get(key if len(kinds) == 1 else "%s.%s" % (key, kind))
            if isinstance(prior, bool) or not isinstance(prior, (int, float)):
                continue
            if kind == "best":
                kind = {"minimize": "min", "min": "min", "maximize": "max",
                        "max": "max"}.get(goal)
            if kind == "min":
                self.min = prior if self.min is None else min(self.min, prior)
            elif kind == "max":
                self.max = prior if self.max is None else max(self.max, prior)

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
        self._name = name or self.id
        self.project = hd_run.project
        self.entity = None
        self.sweep_id = hd_run.sweep_id
        self.settings = settings
        self.group = group
        self.job_type = job_type
        self.tags = tuple(tags or ())
        self.notes = notes
        self.mode = hd_run.mode
        self.resumed = bool(getattr(hd_run, "resumed", False))
        # What the run held when this process took it up: where min/max summaries go on from.
        self._resumed_summary = dict(hd_run.summary) if self.resumed else {}
        #: The step this process started logging at (W&B's: above 0 for a resumed run).
        self.starting_step = hd_run.step
        self.start_time = time.time()
        self.path = "%s/%s" % (self.project, self.id)
        self.url = ("%s/runs/%s" % (hd_run.server, hd_run.id)) if hd_run.server else None
        self.dir = self._make_dir(directory)
        self._row = {}
        # The step goes on from the hyperdial run's: a second wandb.init() attached to the same
        # run (reinit=True under an agent) must not write over the first one's points.
        self._step = hd_run.step
        self._trial = None  # the hyperdial.Trial when wandb.agent(function=) runs this run
        self._metrics = []  # _Metric, in definition order
        self._aggregates = {}  # metric name -> _Aggregate
        self._last = {}  # last logged value of every metric (for step metrics)
        self._finished = False
        self._exit_code = None  # what finish() was given

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

    @property
    def name(self):
        """The run's display name (its id when it has none)."""
        return self._name

    @name.setter
    def name(self, value):
        """Rename the run, as W&B does (``wandb.run.name = "lr=0.1"``): stored with the run
        on the server (under an agent and with a server; an offline run keeps the name of
        its ``init``)."""
        self._name = str(value)
        self._hd.name = self._name
        if self._hd.mode in ("agent", "server"):
            self._hd._send_name(self._name)

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
                if _is_ignored(value):
                    continue  # media, tables, charts: their class warned when it was made
                kind = type(value).__name__
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
        trial = self._trial
        if trial is not None and (self._hd.stop_requested or trial.should_stop()):
            # Under wandb.agent(function=...): end the function here, as W&B's agent does by
            # raising in its thread; the agent records the run stopped.
            raise AgentRunStopped("the sweep asked run %s to stop (early termination, or the "
                                  "sweep was stopped)" % self.id)

    def _commit(self):
        """Send the pending row as one point at the step. As in W&B, a row that logs a metric
        defined with a step metric but not the step metric itself gets the step metric's last
        value (``step_sync``), so ``history(x_axis=...)`` places it."""
        row, self._row = self._row, {}
        if not row:
            return
        step = self._step
        self._step += 1
        synced = {}
        for key in row:
            step_metric = self._definition(key)[0]
            if (step_metric and step_metric != key and step_metric not in row
                    and step_metric in self._last):
                synced[step_metric] = self._last[step_metric]
        row.update(synced)
        self._last.update(row)
        self._hd.log(row, step=step)
        self._update_summaries({k: v for k, v in row.items() if k not in synced})
        # W&B's summary is last write wins: a value logged under a key the script set in the
        # summary replaces the value set (hyperdial's own summary keeps the value set).
        explicit = self._hd.summary._explicit
        relogged = {k: v for k, v in row.items()
                    if k in explicit and k not in synced and not self._definition(k)[1]
                    and isinstance(v, numbers.Real)}
        if relogged:
            self._hd.summary.update(relogged)

    def _definition(self, key):
        """(step metric to sync into its rows, summary kinds, goal) of metric ``key``: what the
        definitions naming it say, over what matching globs say; a later definition wins."""
        step_metric, kinds, goal = None, [], None
        for exact in (False, True):
            for metric in self._metrics:
                if exact:
                    matches = metric.name == key
                else:
                    matches = "*" in metric.name and fnmatch.fnmatchcase(key, metric.name)
                if matches:
                    if metric.step_metric:
                        step_metric = metric.step_metric if metric.step_sync is not False else None
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
            aggregate = self._aggregates.get(key)
            if aggregate is None:
                aggregate = self._aggregates[key] = _Aggregate()
                if self._resumed_summary:
                    aggregate.seed(kinds, goal, self._resumed_summary, key)
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

        ``step_metric``: the metric that is this one's x axis in charts (an epoch, a global
        step); with ``step_sync`` (the default) its last value is added to a row that logs
        this metric without it, as W&B does. Rows keep their own steps. ``summary``: ``"min"``,
        ``"max"``, ``"mean"``, ``"last"``, ``"first"``, ``"best"`` (with ``goal``
        ``"minimize"`` or ``"maximize"``), ``"copy"`` or ``"none"``, or several joined by
        commas; one aggregate becomes the summary value of the metric (and so what a sweep
        reads from the summary), several are stored as ``name.min``, ``name.max``, ....
        ``goal``: ``"minimize"`` or ``"maximize"``. ``hidden`` and ``overwrite`` are accepted
        and have no effect.
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
        metric = _Metric(name, step_metric, kinds, goal, hidden, step_sync)
        with _lock:
            if step_metric and not any(m.name == step_metric for m in self._metrics):
                self._metrics.append(_Metric(step_metric, None, [], None, None))
            self._metrics.append(metric)
        return metric

    # ---------------------------------------------------------------- the end

    def finish(self, exit_code=None, quiet=None):
        """Send the pending row and the summaries, and end the run (once).

        ``exit_code`` other than 0 marks the run failed, as in W&B: outside an agent and under
        ``wandb.agent(function=...)`` with the finish itself; under ``hyperdial agent``,
        ``tune`` and ``hyperdial run`` (which end the run when its process exits) by writing
        the code to the file ``HYPERDIAL_EXIT_FILE`` names, so a process that then exits 0
        ends the run failed with that code. Without that file (an older agent) a warning says
        to end the script with ``sys.exit(code)``."""
        with _lock:
            if self._finished:
                return
            self._commit()
            self._finished = True
            self._exit_code = exit_code
            integers = self._integer_summary()
        if integers:
            self._hd.summary.update(integers)
        if exit_code and self._trial is not None:
            self._trial.wandb_exit_code = exit_code  # the agent ends the run failed
        if exit_code and self._trial is None and self._hd.mode == "agent":
            if not _declare_exit(exit_code):
                _warn_once("finish-exit-code",
                           "wandb.finish(exit_code=%r): the run's state comes from the "
                           "process's exit status here; end the script with sys.exit(%r) to "
                           "mark the run failed" % (exit_code, exit_code))
        self._hd.finish(exit_code=0 if exit_code is None else exit_code)
        _forget(self)

    def _integer_summary(self):
        """The metrics whose last logged value is an integer, with that value: W&B's summary
        keeps a logged ``int`` an ``int`` (``run.summary["epoch"]`` reads back ``3``, not
        ``3.0``), while hyperdial stores metric values as floats. Sent as summary values at the
        end of the run; leaves out metrics with a ``define_metric`` summary (their aggregate
        is the summary) and keys the script set in the summary itself."""
        explicit = self._hd.summary._explicit
        return {key: int(value) for key, value in self._last.items()
                if isinstance(value, numbers.Integral) and not isinstance(value, bool)
                and key not in explicit and not self._definition(key)[1]}

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
    def save(self, glob_str=None, *args, **kwargs):
        """``run.save(path)`` uploads files to W&B: accepted and ignored (one warning).
        ``run.save()`` without a path (W&B's old way to push a renamed run) does nothing: the
        name is stored when it is set."""
        if glob_str is not None:
            save(glob_str, *args, **kwargs)
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

    def get_url(self):
        """The run's page on the hyperdial dashboard (W&B's ``run.get_url()``), or None."""
        return self.url

    def get_project_url(self):
        """The dashboard's runs page of the run's project, or None."""
        server = self._hd.server
        return "%s/runs?project=%s" % (server, self.project) if server else None

    def get_sweep_url(self):
        """The dashboard page of the run's sweep, or None outside a sweep."""
        server = self._hd.server
        return "%s/sweeps/%s" % (server, self.sweep_id) if server and self.sweep_id else None

    def project_name(self):
        """The run's project (W&B's ``run.project_name()``)."""
        return self.project

    @property
    def offline(self):
        """True for a run written to hyperdial's offline file."""
        return self.mode == "offline"

    @property
    def disabled(self):
        """True for a run that records nothing (``mode="disabled"``)."""
        return self.mode == "disabled"

    def _label(self, *args, **kwargs):
        """W&B's private telemetry label (integrations such as transformers' Trainer call
        it): does nothing."""

    def __repr__(self):
        return "<wandb.Run %s (hyperdial, %s)>" % (self.id, self.mode)


class RunDisabled(Run):
    """The run of ``mode="disabled"`` (or ``WANDB_MODE=disabled``): a :class:`Run` that
    records nothing. W&B's class of that name, so ``isinstance(wandb.run, RunDisabled)``
    works."""


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


class _RunSummary(dict):
    """A read-back run's summary (W&B's ``HTTPSummary``): a dict of the run's summary values.
    ``summary["k"] = v`` (or ``summary.k = v``) changes it here; ``summary.update()`` (with or
    without a dict of values) or ``run.update()`` stores the changes on the server, which
    keeps them over the logged values, as W&B does. ``_json_dict`` is the plain dict, for
    W&B's export recipes. Keys cannot be deleted (the server only adds and replaces):
    ``del`` raises TypeError."""

    def __init__(self, run, values):
        super().__init__(values)
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_changed", {})

    def __setitem__(self, key, value):
        if not isinstance(key, str) or not key.strip():
            raise TypeError("summary keys are non-empty strings, got %r" % (key,))
        key = key.strip()
        super().__setitem__(key, value)
        self._changed[key] = value

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError("the summary of run %s has no %r" % (self._run.id, name))

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delitem__(self, key):
        raise TypeError("hyperdial cannot delete a key from a run's summary (its server only "
                        "adds and replaces values); set it to None instead")

    @property
    def _json_dict(self):
        """The summary as a plain dict (W&B's ``summary._json_dict``)."""
        return dict(self)

    def update(self, key_vals=None, overwrite=True, **kwargs):
        """Set ``key_vals`` (and keyword values), then store every change on the server
        (W&B's ``run.summary.update()``). ``overwrite`` is accepted: the values given always
        replace the stored ones."""
        for key, value in dict(key_vals or {}, **kwargs).items():
            self[key] = value
        self._commit()

    def _commit(self):
        if not self._changed:
            return
        changed = dict(self._changed)
        _hd._transport._call(self._run._transport, "PUT", "/api/v1/runs/%s/summary"
                             % urllib.parse.quote(self._run.id, safe=""),
                             {k: _hd._values._jsonable(v) for k, v in changed.items()})
        for key in changed:
            self._changed.pop(key, None)


class PublicRun(_hd.Trial):
    """A run read back through :class:`Api` (W&B's ``wandb.apis.public.Run``): hyperdial's
    :class:`hyperdial.Trial` (``id``, ``state``, ``config``, ``summary``, ``sweep``,
    ``project``, ``created_at``, ``url``, ``scan_history()``, ...), whose ``name`` is never
    None (the run's id when it has no name, as W&B always shows one) and whose
    :meth:`history` takes W&B's arguments and defaults."""

    def __init__(self, sweep, run, transport=None):
        super().__init__(sweep, run, transport=transport)
        self.name = self.name or self.id
        # Again, now that the run's data is there for the summary's `_step` and times.
        self.summary = dict(run.get("summary") or {})

    @property
    def summary(self):
        """The run's summary, W&B's way (:class:`_RunSummary`): the last value of every
        metric, overlaid by the values the script set, plus ``_step`` (the last step logged),
        ``_timestamp`` (when it ended, else its last heartbeat, in seconds since the epoch) and
        ``_runtime`` (seconds from its start to then), as W&B adds them. Changes are stored
        by ``summary.update()`` or :meth:`update`."""
        return self._summary

    @summary.setter
    def summary(self, values):
        values = dict(values or {})
        data = self.__dict__.get("data") or {}
        self._summary = _RunSummary(self, dict(self._summary_extras(data), **values))

    def _summary_extras(self, data):
        extras = {}
        steps = data.get("steps")
        if isinstance(steps, int) and steps > 0:
            extras["_step"] = steps - 1
        started = data.get("started_ms") or data.get("created_ms")
        ended = data.get("finished_ms") or data.get("heartbeat_ms")
        if isinstance(ended, (int, float)):
            extras["_timestamp"] = ended / 1000.0
            if isinstance(started, (int, float)) and ended >= started:
                extras["_runtime"] = (ended - started) / 1000.0
        return extras

    def update(self):
        """Store the changes made to :attr:`summary` on the server (W&B's ``run.update()``).
        Other fields (``config``, ``name``, ``tags``...) are not stored back: hyperdial keeps
        a run's config as the run gave it."""
        self._summary._commit()

    @property
    def display_name(self):
        """The run's name (W&B's ``display_name``)."""
        return self.name

    @property
    def heartbeat_at(self):
        """When the run was last heard from (its last heartbeat, else its end), as W&B writes
        times (``"2026-11-29T14:03:07Z"``); None before it started."""
        ms = self.data.get("heartbeat_ms") or self.data.get("finished_ms")
        return _hd._query._iso_time(ms) if ms else None

    @property
    def rawconfig(self):
        """The run's config as stored (W&B's ``rawconfig``, which adds its own internal keys,
        ``_wandb`` and ``wandb_version``, to ``config``): hyperdial keeps no internal keys in
        a run's config, so it holds what :attr:`config` holds, as a plain nested dict."""
        return copy.deepcopy(dict(self.data.get("config") or {}))

    @property
    def storage_id(self):
        """The run's id on the server (W&B's ``storage_id``, its database id beside the id
        shown in paths): hyperdial has one id per run, :attr:`id`."""
        return self.id

    @property
    def sweep_name(self):
        """The id of the run's sweep (W&B's ``sweep_name``), None outside a sweep."""
        return self.sweep_id

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
        ``_step``, ``_timestamp`` and the metrics logged at that step; with ``keys`` (a list
        of strings) only ``x_axis`` and those metrics, and only the rows holding every one of
        them. ``keys`` that is not a list of strings prints an error and gives ``[]``, as W&B
        does. A
        ``pandas.DataFrame`` of those rows when ``pandas`` is true and pandas can be imported
        (else the list, with a warning, as W&B does); the list with ``pandas=False``.
        ``stream="system"`` (or any other than ``"default"``) reads system metrics, which
        hyperdial does not record: no rows, with a warning. Rows carry no ``_runtime``."""
        if not _keys_ok(keys):
            return []
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
                columns = [x_axis] + [k for k in keys if k != x_axis]
                rows = [{k: row[k] for k in columns if k in row} for row in rows
                        if all(k in row for k in needed)]
            rows = _thinned(rows, int(samples))
            integers = self._integer_metrics()
            if integers:
                rows = [_with_integers(row, integers) for row in rows]
        if pandas:
            try:
                import pandas as pd  # noqa: PLC0415 -- optional, as in W&B
            except ImportError:
                _warn_once("history-pandas", "pandas cannot be imported: run.history() returns "
                                             "a list of dicts (call it with pandas=False)")
                return rows
            return pd.DataFrame.from_records(rows)
        return rows


    def scan_history(self, keys=None, page_size=1000, min_step=None, max_step=None):
        """Every row of the run's history, read ``page_size`` steps at a time, as W&B's
        ``run.scan_history()``: without ``keys`` each row is a dict of ``_step``,
        ``_timestamp`` and the metrics logged at that step; with ``keys`` (a list of strings)
        each row holds exactly those keys, and only the rows holding every one of them are
        given. ``keys`` that is not a list of strings prints an error and gives ``[]``."""
        if not _keys_ok(keys):
            return []
        rows = super().scan_history(keys, page_size=page_size, min_step=min_step,
                                    max_step=max_step)
        integers = self._integer_metrics()
        if integers:
            rows = (_with_integers(row, integers) for row in rows)
        if not keys:
            return rows
        return ({k: row[k] for k in keys} for row in rows if all(k in row for k in keys))

    def _integer_metrics(self):
        """The metrics that W&B would give back as integers: those whose value in the run's
        stored summary is an integer. The server stores every metric value as a double, but
        the W&B-compatible module puts a metric whose last logged value was an integer in the
        summary as that integer at the end of the run (``epoch``, ``global_step``)."""
        summary = (self.__dict__.get("data") or {}).get("summary") or {}
        return frozenset(k for k, v in summary.items()
                         if isinstance(v, int) and not isinstance(v, bool)
                         and k not in ("_step", "_timestamp", "_runtime"))


def _with_integers(row, integers):
    """``row`` with the integral values of the metrics ``integers`` as ints (``3.0`` as
    ``3``); other values, and values beyond 2^53 (where a double no longer holds every
    integer), are left as they are."""
    out = dict(row)
    for key in integers:
        value = out.get(key)
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            out[key] = int(value)
    return out


def _keys_ok(keys):
    """Whether ``keys`` is None or a list of strings, else W&B's error line (W&B prints it and
    returns no rows rather than raising)."""
    if keys is None:
        return True
    if not isinstance(keys, list):
        termerror("keys must be specified in a list")
        return False
    if keys and not isinstance(keys[0], str):
        termerror("keys argument must be a list of strings")
        return False
    return True


def _wb_parameters(parameters):
    """The ``parameters`` block of a W&B sweep config, nested as W&B users write it, from
    the server's validated list (``[{"name", "path", "distribution"}]``)."""
    out = {}
    for param in parameters or []:
        path = param.get("path") or [param.get("name")]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {"parameters": {}})["parameters"]
        spec = {k: v for k, v in (param.get("distribution") or {}).items() if v is not None}
        kind = spec.get("distribution")
        if kind == "constant" and set(spec) <= {"distribution", "value"}:
            spec = {"value": spec.get("value")}
        elif kind == "categorical" and set(spec) <= {"distribution", "values"}:
            spec = {"values": spec.get("values")}
        node[path[-1]] = spec
    return out


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


class _Runs(list):
    """The runs :meth:`Api.runs` gives (W&B's ``Runs``): a list of :class:`PublicRun`, with
    :meth:`histories`."""

    def histories(self, samples=500, keys=None, x_axis="_step", format="default",
                  stream="default"):
        """Every run's :meth:`PublicRun.history` (``samples`` rows per run), each row with
        the ``run_id`` it belongs to: a list of dicts (``format="default"``) or one
        ``pandas.DataFrame`` (``"pandas"``), as W&B's ``runs.histories()``. ``"polars"`` is
        not available here (ValueError)."""
        if format not in ("default", "pandas"):
            raise ValueError("histories(format=%r): use 'default' or 'pandas' (polars is not "
                             "available under hyperdial)" % (format,))
        rows = []
        for r in self:
            for row in r.history(samples=samples, keys=keys, x_axis=x_axis, pandas=False,
                                 stream=stream):
                row["run_id"] = r.id
                rows.append(row)
        if format == "pandas":
            import pandas as pd  # noqa: PLC0415 -- asked for, as in W&B

            return pd.DataFrame.from_records(rows)
        return rows


class PublicSweep(_hd.Sweep):
    """A sweep read back through :class:`Api` (W&B's ``wandb.apis.public.Sweep``):
    hyperdial's :class:`hyperdial.Sweep` (``id``, ``name``, ``project``, ``state``, ``runs``,
    ...) whose runs are :class:`PublicRun`, whose ``config`` is the sweep config in W&B's
    shape, and whose ``best_run()`` sorts by the summary, as W&B's do."""

    _trial_class = PublicRun

    @property
    def config(self):
        """The sweep config as W&B gives it: a dict in the sweep file's shape (``parameters``
        nested by name, ``{"values": [...]}``, ``{"value": x}``, ``{"distribution": ...,
        "min": ..., "max": ...}``), with the values hyperdial read (numbers as numbers);
        keys hyperdial adds with their defaults are left out. The server's validated form is
        ``hyperdial.Sweep(...).config``."""
        validated = dict(self.data.get("config") or {})
        out = {}
        for key, value in validated.items():
            if key == "parameters":
                out[key] = _wb_parameters(value)
            elif key == "metric" and isinstance(value, dict):
                out[key] = {k: value[k] for k in ("name", "goal", "target")
                            if value.get(k) is not None}
            elif key == "sample_without_replacement" and not value:
                continue
            elif value is not None:
                out[key] = _without_nulls(value)
        return out

    @property
    def order(self):
        """W&B's order of the sweep's runs by its metric: ``"+summary_metrics.NAME"`` to
        minimize, ``"-summary_metrics.NAME"`` to maximize; None without a single metric."""
        metric = self.metric
        if not isinstance(metric, dict) or not metric.get("name"):
            return None
        prefix = "-" if metric.get("goal") == "maximize" else "+"
        return "%ssummary_metrics.%s" % (prefix, metric["name"])

    def best_run(self, order=None):
        """The best run, W&B's way: sorted by ``order``, else by the sweep's metric in each
        run's summary (:attr:`order`: the last logged value, or the value the script put in
        the summary), among the ``finished`` and ``stopped_early`` runs (W&B sorts every
        run). A sweep without a metric gives its most recent run, said on standard error.
        ``hyperdial.Sweep.best_run()`` ranks by the best value each run logged instead."""
        if order is None and self.order is not None:
            runs = [t.data for t in self.trials()
                    if t.state in ("finished", "stopped_early")]
            runs = _hd._query._sorted_runs(runs, self.order)
            return self._trial_class(self, runs[0]) if runs else None
        return super().best_run(order=order)

    @property
    def expected_run_count(self):
        """W&B's ``expected_run_count``: how many runs the sweep makes before it ends by
        itself, the server's ``expected_runs``. The configurations of a finite space that it
        runs each once (a grid; random search without replacement; bayes and tpe unless
        ``allow_repeats``), at most ``run_cap``; else ``run_cap``; None when nothing ends it.
        W&B gives the size of any discrete space, also for a random search that never ends."""
        return self.data.get("expected_runs")

    @property
    def path(self):
        """W&B's ``[entity, project, sweep_id]``: ``["", project, id]`` (no entities)."""
        return ["", self.project or "", self.id]

    @property
    def url(self):
        """The sweep's page on the server's dashboard."""
        return "%s/sweeps/%s" % (self.server, self.id)


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
        return _Runs(super().runs(path, filters=filters, order=order, per_page=per_page,
                                  include_sweeps=include_sweeps, **kwargs))

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
    ``"finish_previous"``, ``"create_new"``), which finishes it first. ``entity``,
    ``settings`` and other W&B options are accepted and have no effect. ``id`` and ``resume``
    (default ``WANDB_RUN_ID`` and ``WANDB_RESUME``) continue a run outside an agent with W&B's
    rules (``hyperdial.init``'s ``id`` and ``resume``: ``"allow"``, ``"must"``, ``"never"``,
    ``"auto"``/``True``); ``run.resumed`` says whether one was continued. Under an agent the
    run is the agent's: another ``id`` gets one warning.
    """
    global run, summary, _hooks  # noqa: PLW0603 -- wandb's module-level state
    with _lock:
        if run is not None and not run._finished:
            if reinit in (None, False, "default", "return_previous"):
                return run
            run.finish()
        if isinstance(settings, collections.abc.Mapping):
            settings = Settings(**settings)
        defaults = _config_files()
        defaults.update(_config_source(config))
        if config_include_keys:
            defaults = {k: v for k, v in defaults.items() if k in set(config_include_keys)}
        if config_exclude_keys:
            defaults = {k: v for k, v in defaults.items() if k not in set(config_exclude_keys)}
        project = project or os.environ.get("WANDB_PROJECT") or None
        name = name or os.environ.get("WANDB_NAME") or None
        hd_mode = _mode(mode, settings)
        # Where the mode came from, for the messages that name it.
        if mode:
            source = "mode=%r" % (mode,)
        elif getattr(settings, "mode", None):
            source = "Settings(mode=%r)" % (settings.mode,)
        else:
            source = "WANDB_MODE=%s" % os.environ.get("WANDB_MODE")
        if hd_mode == "disabled" and os.environ.get("HYPERDIAL_RUN_ID"):
            # Under an agent the run exists and the sweep waits for its metric: say why it
            # will get none (a WANDB_MODE=disabled left in the shell is easy to miss).
            _warn_once("disabled-under-agent", "wandb is disabled (%s): run %s records nothing, "
                       "so the sweep gets no metric from it" % (
                           source, os.environ["HYPERDIAL_RUN_ID"]))
        if os.environ.get("HYPERDIAL_RUN_ID"):
            hd_run = _hd.init(config=defaults, project=project, name=name, mode=hd_mode)
            _warn_resume(id, resume, hd_run)
        else:
            run_id = id or os.environ.get("WANDB_RUN_ID") or None
            resume = resume or os.environ.get("WANDB_RESUME") or None
            if run_id is None and resume == "allow":
                # W&B makes a new run for "allow" without an id (PyTorch Lightning always
                # passes it); hyperdial.init would ask for the id.
                resume = None
            try:
                hd_run = _hd.init(config=defaults, project=project, name=name, mode=hd_mode,
                                  id=run_id, resume=resume,
                                  _mode_source=source if hd_mode == "offline" else None)
            except ValueError as err:
                raise errors.UsageError(str(err)) from None
        kind = RunDisabled if hd_run.mode == "disabled" else Run
        new = kind(hd_run, name, settings or Settings(), group, job_type, tags, notes,
                   None if dir is None else os.fspath(dir))
        new._trial = _agent_trial
        run = new
        globals()["config"] = new.config  # `config` is also this function's parameter
        summary = new.summary
        if not _hooks:
            _hooks = True
            atexit.register(_at_exit)
        return new


def _warn_resume(run_id, resume, hd_run):
    """Under an agent, one warning when the script names a run other than the agent's
    (``init(id=...)``): W&B attaches to the agent's run there too, and so does hyperdial.
    Nothing for the agent's own run id (the agent sets ``WANDB_RUN_ID`` to it)."""
    agent_run = os.environ.get("HYPERDIAL_RUN_ID")
    if not agent_run or run_id is None or str(run_id) == agent_run:
        return
    asked = ", ".join("%s=%r" % kv for kv in (("id", run_id), ("resume", resume))
                      if kv[1] is not None)
    _warn_once("resume", "wandb.init(%s): under an agent the data goes to the agent's run %s"
               % (asked, agent_run))


def _config_files():
    """The defaults of W&B's config files, the lowest layer of ``wandb.config``: the files
    ``WANDB_CONFIG_PATHS`` names (comma-separated), else ``config-defaults.yaml`` in the working
    directory when it exists. A file holds ``key: {desc: ..., value: ...}`` entries (a plain
    ``key: value`` is taken too); ``wandb_version`` and W&B's ``_wandb`` block are dropped. Reading YAML needs PyYAML:
    without it, or for a file that cannot be read, one warning and no defaults from it."""
    named = os.environ.get("WANDB_CONFIG_PATHS", "")
    paths = [p.strip() for p in named.split(",") if p.strip()]
    if not paths:
        if not os.path.isfile("config-defaults.yaml"):
            return {}
        paths = ["config-defaults.yaml"]
    values = {}
    for path in paths:
        try:
            loaded = _config_source(path)
        except Exception as err:  # noqa: BLE001 -- reported; the script goes on without it
            _warn_once("config-file:" + path, "cannot read the config file %s (%s); its "
                       "defaults are not in wandb.config" % (path, err))
            continue
        # W&B's own bookkeeping in a config file it wrote (a run's config.yaml reused as
        # defaults): never a key of the script's config.
        loaded.pop("wandb_version", None)
        loaded.pop("_wandb", None)
        values.update(loaded)
    return values


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


# --------------------------------------------------------------------------------------------
# Sweeps driven from this process: wandb.sweep and wandb.agent
#
# W&B's notebook pattern, `sweep_id = wandb.sweep(config)` then `wandb.agent(sweep_id,
# function=train, count=N)`: the sweep is created on the hyperdial server (the one
# HYPERDIAL_SERVER names, else a local one this process starts, as hyperdial.Sweep does), and
# the agent claims its runs one after another and calls `train()` for each, in this thread.
# While it runs, the environment says which run it is (HYPERDIAL_RUN_ID, HYPERDIAL_CONFIG, and
# W&B's WANDB_RUN_ID, WANDB_SWEEP_ID), so the `wandb.init()` inside attaches to the claimed run
# and its config holds the run's values, exactly as under `hyperdial agent`. The agent then
# ends the run: `finished`, `failed` with the traceback when `train` raised, `stopped_early`
# when the sweep's early_terminate asked it to stop (the next `wandb.log` raises
# AgentRunStopped, the way W&B interrupts the function's thread).

#: W&B's rules for an agent whose function keeps failing (wandb_agent.Agent): 3 failures in
#: the agent's first 60 s stop it (unless WANDB_AGENT_DISABLE_FLAPPING=true), and so does
#: every run failing once more than WANDB_AGENT_MAX_INITIAL_FAILURES (default 5) have.
_FLAPPING_SECONDS = 60.0
_FLAPPING_FAILURES = 3
_MAX_INITIAL_FAILURES = 5

_created_sweeps = {}  # sweep id -> hyperdial.Sweep made by wandb.sweep() in this process
_agent_trial = None  # the trial wandb.agent() is running (the next init attaches to it)


class AgentRunStopped(Exception):  # noqa: N818 -- W&B raises a bare Exception here
    """Raised by ``wandb.log`` inside a ``wandb.agent(function=...)`` run that the sweep asked
    to stop (early termination, a stopped or cancelled sweep): the function ends there and the
    agent records the run ``stopped_early`` (``cancelled`` for a cancelled sweep). It is an
    ``Exception``, as the one W&B's agent raises in the function's thread."""


def sweep(sweep, entity=None, project=None, prior_runs=None):  # noqa: A002 -- W&B's name
    """Create a sweep from a W&B sweep configuration and return its id (W&B's
    ``wandb.sweep``).

    ``sweep`` is the configuration (a dict, or a callable returning one), in the W&B Sweeps
    format; ``program`` is not needed when :func:`agent` runs a function. ``project`` (else
    the config's ``project``, else ``WANDB_PROJECT``) is the sweep's project. The sweep is
    created on the server of ``HYPERDIAL_SERVER``, else ``http://127.0.0.1:8337``, else a
    local server this process starts on ``./.hyperdial/hyperdial.db`` (it stops when the
    process exits). ``entity`` is ignored; ``prior_runs`` (W&B run ids to attach) is ignored
    with a warning. An invalid config raises ValueError naming each mistake.
    """
    if callable(sweep):
        sweep = sweep()
    if not isinstance(sweep, collections.abc.Mapping):
        raise errors.UsageError("wandb.sweep() takes a sweep configuration (a dict), got %s"
                                % type(sweep).__name__)
    if prior_runs:
        _warn_once("prior_runs", "wandb.sweep(prior_runs=...): hyperdial does not attach "
                                 "existing runs to a new sweep; ignored")
    config = dict(sweep)
    project = project or config.get("project") or os.environ.get("WANDB_PROJECT") or None
    created = _hd.Sweep.create(config, project=project)
    with _lock:
        _created_sweeps[created.id] = created
    _warn("created sweep %s on %s (dashboard %s/sweeps/%s)" % (
        created.id, created.server, created.server, created.id))
    return created.id


def _sweep_of(sweep_id):
    """The hyperdial.Sweep of ``sweep_id`` (``"id"`` or W&B's ``"entity/project/id"``)."""
    if not isinstance(sweep_id, str) or not sweep_id.strip("/"):
        raise errors.UsageError("wandb.agent(): sweep_id must be the id wandb.sweep() "
                                "returned, got %r" % (sweep_id,))
    sweep_id = sweep_id.strip("/").rsplit("/", 1)[-1]
    with _lock:
        known = _created_sweeps.get(sweep_id)
    return known if known is not None else _hd.Sweep.get(sweep_id)


def agent(sweep_id, function=None, entity=None, project=None, count=None):
    """Run runs of a sweep (W&B's ``wandb.agent``).

    With ``function``: claim the sweep's runs one after another and call ``function()`` for
    each (in this thread); the ``wandb.init()`` inside attaches to the claimed run, whose
    config holds its values. Stops after ``count`` runs (default: until the sweep is over),
    on Ctrl-C (the run in progress ends ``cancelled``), or when the function keeps failing
    (W&B's rules: 3 failed runs in the agent's first 60 s, unless
    ``WANDB_AGENT_DISABLE_FLAPPING=true``; or every run failed once more than
    ``WANDB_AGENT_MAX_INITIAL_FAILURES``, default 5, have). A run whose function raised ends
    ``failed`` with its traceback, which is also printed, and the agent goes on. Without
    ``function``: runs ``hyperdial agent SWEEP_ID --wandb`` (the sweep's ``program``, once
    per run) and waits for it. ``entity`` and ``project`` are ignored (the sweep has them).
    """
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                              or count < 0):
        raise errors.UsageError("wandb.agent(count=%r): count is a non-negative integer"
                                % (count,))
    if function is not None and not callable(function):
        raise errors.UsageError("wandb.agent(function=...) must be callable, got %s"
                                % type(function).__name__)
    offline = [name for name in ("WANDB_MODE", "HYPERDIAL_MODE")
               if os.environ.get(name, "").strip().lower() in ("offline", "dryrun")]
    if offline:
        # The sweep hands out runs and waits for their metric: recorded offline, the runs
        # would end without one and their data land outside the sweep.
        raise errors.UsageError(
            "wandb.agent(%r): %s=offline is set, but a sweep's runs report to its server; "
            "unset it to run the sweep" % (sweep_id, offline[0]))
    target = _sweep_of(sweep_id)
    if function is None:
        return _program_agent(target, count)
    return _function_agent(target, function, count)


def _program_agent(target, count):
    """``wandb.agent(sweep_id)`` without a function: the sweep's program, run by
    ``hyperdial agent --wandb`` against the sweep's server."""
    import subprocess  # noqa: PLC0415 -- only here

    binary = _hd._local_server._hyperdial_binary()
    if binary is None:
        raise errors.UsageError(
            "wandb.agent(%r) without function= runs the sweep's program with `hyperdial "
            "agent`, which was not found (on PATH, or named by HYPERDIAL_BIN); pass "
            "function=... or run `hyperdial agent %s --wandb`" % (target.id, target.id))
    argv = [binary, "agent", target.id, "--wandb", "--server", target.server]
    if count is not None:
        argv += ["--count", str(count)]
    code = subprocess.call(argv)
    if code != 0:
        raise errors.Error("`%s` exited with status %d" % (" ".join(argv), code))


def _function_agent(target, function, count):
    global _agent_trial  # noqa: PLW0603 -- the run the next init attaches to
    import shutil  # noqa: PLC0415 -- only here
    import tempfile  # noqa: PLC0415 -- only here

    try:
        max_initial = int(os.environ.get("WANDB_AGENT_MAX_INITIAL_FAILURES", "") or
                          _MAX_INITIAL_FAILURES)
    except ValueError:
        max_initial = _MAX_INITIAL_FAILURES
    flapping = os.environ.get("WANDB_AGENT_DISABLE_FLAPPING", "").lower() != "true"
    started = time.monotonic()
    runs = failures = 0
    trial = None
    files = tempfile.mkdtemp(prefix="hyperdial-wandb-agent-")
    try:
        while count is None or runs < count:
            trial = _claim(target)
            if trial is None:
                _warn("sweep %s is over (%s); the agent stops" % (target.id, target.state))
                break
            runs += 1
            _warn("agent starting run %s (#%s) with config: %s" % (
                trial.id, trial.number, ", ".join(
                    "%s=%r" % kv for kv in sorted(trial.params.items())) or "none"))
            error = _run_function(target, trial, function, files)
            trial = None
            if error is None:
                continue
            failures += 1
            _warn("run %s errored:\n%s" % (error[0], error[1]))
            if flapping and failures >= _FLAPPING_FAILURES and \
                    time.monotonic() - started < _FLAPPING_SECONDS:
                _warn("detected %d failed runs in the first %d seconds, stopping the agent (to "
                      "disable this check set WANDB_AGENT_DISABLE_FLAPPING=true)"
                      % (_FLAPPING_FAILURES, _FLAPPING_SECONDS))
                break
            if failures == runs and failures > max_initial:
                _warn("detected %d failed runs in a row at start, stopping the agent (to "
                      "change this value set WANDB_AGENT_MAX_INITIAL_FAILURES)" % failures)
                break
    except KeyboardInterrupt:
        # Ctrl-C: the run in progress (or a claim cut short) ends cancelled, and the agent
        # returns, as W&B's does ("Ctrl + C detected. Stopping sweep.").
        _agent_trial = None
        target._settle_interrupted(trial)
        _warn("Ctrl-C: the agent of sweep %s stops" % target.id)
    finally:
        _agent_trial = None
        shutil.rmtree(files, ignore_errors=True)


def _claim(target):
    """The next run of ``target`` to run (a hyperdial.Trial), or None when the sweep is over;
    waits as long as the sweep has nothing to start (paused, run_cap reached with runs still
    open elsewhere), as W&B's agent does."""
    waiting = False
    while True:
        try:
            return target.ask()
        except TimeoutError:
            if not waiting:
                waiting = True
                _warn("sweep %s has no run to start now; the agent waits" % target.id)


def _run_function(target, trial, function, files):
    """Run ``function()`` as run ``trial`` of sweep ``target`` and end the run. Returns None,
    or (run id, traceback text) when the function raised."""
    global _agent_trial  # noqa: PLW0603 -- the run the next init attaches to
    import traceback  # noqa: PLC0415 -- only here

    run_dir = os.path.join(files, trial.id)
    os.makedirs(run_dir, exist_ok=True)
    config_file = os.path.join(run_dir, "config.json")
    with open(config_file, "w", encoding="utf-8") as f:
        json.dump(trial.config.as_dict() if hasattr(trial.config, "as_dict")
                  else dict(trial.config), f)
    env = {"HYPERDIAL_RUN_ID": trial.id, "HYPERDIAL_SWEEP_ID": target.id,
           "HYPERDIAL_SERVER": target.server, "HYPERDIAL_CONFIG": config_file,
           "WANDB_RUN_ID": trial.id, "WANDB_SWEEP_ID": target.id}
    if trial.project:
        # The run's project (its sweep's) is what `wandb.run.project` says, as under `tune`.
        env["HYPERDIAL_PROJECT"] = trial.project
    saved = {key: os.environ.get(key) for key in env}
    if run is not None:
        run.finish()  # W&B's agent tears down a run left open before each job
    os.environ.update(env)
    _agent_trial = trial
    state, exit_code, error = None, 0, None
    try:
        function()
    except AgentRunStopped:
        state = "stopped"
    except KeyboardInterrupt:
        _finish_agent_run(1)
        raise
    except Exception:  # noqa: BLE001 -- W&B's agent records the error and goes on
        exit_code = 1
        error = traceback.format_exc()
    finally:
        _agent_trial = None
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    stop = _finish_agent_run(exit_code)
    if state is None and not exit_code and getattr(trial, "wandb_exit_code", None):
        exit_code = trial.wandb_exit_code  # the function called wandb.finish(exit_code=N)
        error = error or "wandb.finish(exit_code=%r)" % (exit_code,)
    end_state, message = None, None
    if state == "stopped" or (stop and exit_code == 0):
        reason = trial._stop_reason or _stop_reason(target, trial)
        end_state = "cancelled" if reason == "cancelled" else "stopped_early"
        _warn("run %s stopped: the sweep asked it to stop (%s)" % (
            trial.id, reason or "early termination"))
    elif error is not None:
        end_state = "failed"
        message = error.strip().splitlines()[-1]
    _end_trial(target, trial, exit_code, end_state, message)
    return None if error is None else (trial.id, error.rstrip())


def _finish_agent_run(exit_code):
    """Finish the wandb run of the agent's trial, if still open; whether the server asked it
    to stop."""
    current = run
    if current is None:
        return False
    stop = current._hd.stop_requested
    current.finish(exit_code=exit_code)
    return stop


def _stop_reason(target, trial):
    """Why the server asked ``trial`` to stop (``"early_terminated"``, ``"cancelled"``...),
    read from the server; None when it cannot be read."""
    try:
        return target.trial(trial.id).data.get("stop_reason")
    except Exception:  # noqa: BLE001 -- the state falls back to stopped_early
        return None


def _end_trial(target, trial, exit_code, state=None, error=None):
    """End ``trial`` on the server (:meth:`hyperdial.Sweep._end`: no value told, the run
    logged its own). A failure is reported and the agent goes on (the server marks a run it
    never hears of again crashed after its run timeout)."""
    try:
        target._end(trial, exit_code, state, error)
    except Exception as err:  # noqa: BLE001 -- reported, the loop goes on
        _warn("cannot end run %s on %s (%s); the server marks it crashed after its run "
              "timeout" % (trial.id, target.server, err))


# --------------------------------------------------------------------------------------------
# W&B's submodule paths
#
# Libraries and scripts import W&B's classes from its submodules: transformers' Trainer
# callback `from wandb.sdk.lib.config_util import ConfigError`, Lightning-style code
# `from wandb.sdk.lib import RunDisabled` and `from wandb.wandb_run import Run`, retry loops
# `from wandb.errors import CommError`, and `wandb.util.generate_id()`. They are registered in
# sys.modules as small modules holding this module's objects, so those imports work; nothing
# else of W&B's SDK exists here (an import of another submodule still fails).


class ConfigError(errors.Error):
    """``wandb.sdk.lib.config_util.ConfigError``; never raised here (a changed config value
    is stored, and a sweep's value is kept with a warning)."""


def generate_id(length=8):
    """A random run-id-like string of ``length`` lowercase letters and digits (W&B's
    ``wandb.util.generate_id``)."""
    import secrets  # noqa: PLC0415 -- only here

    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(int(length)))


# Keras callbacks (``wandb.integration.keras``, and the older ``wandb.keras``), built on first
# use on the installed Keras (``keras``, else ``tensorflow.keras``): they only turn the logs
# Keras hands to callbacks into wandb.log calls, as W&B's do.

_integration_classes = {}


def _keras_callbacks():
    try:
        from keras import callbacks  # noqa: PLC0415 -- Keras 3, only when asked for
    except ImportError:
        try:
            from tensorflow.keras import callbacks  # noqa: PLC0415 -- TensorFlow's Keras
        except ImportError:
            raise ImportError("wandb.integration.keras needs Keras: neither `keras` nor "
                              "`tensorflow` can be imported") from None
    return callbacks


def _keras_learning_rate(model, step):
    """The optimizer's learning rate as a float (a schedule is evaluated at ``step``), or
    None when it cannot be read."""
    try:
        rate = model.optimizer.learning_rate
        if callable(rate) and not hasattr(rate, "numpy"):
            rate = rate(step)
        return float(rate.numpy() if hasattr(rate, "numpy") else rate)
    except Exception:  # noqa: BLE001 -- W&B also logs no rate then
        return None


def _keras_metrics_logger(callbacks):
    class WandbMetricsLogger(callbacks.Callback):
        """W&B's Keras callback: logs the metrics Keras hands to ``on_epoch_end`` as
        ``epoch/<name>`` with ``epoch/epoch`` as their x axis (``log_freq="epoch"``), or those
        of every ``log_freq``-th batch as ``batch/<name>`` against ``batch/batch_step``
        (``"batch"`` is 1), with the optimizer's learning rate."""

        def __init__(self, log_freq="epoch", initial_global_step=0, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if run is None:
                raise errors.Error("You must call `wandb.init()` before WandbMetricsLogger()")
            if log_freq == "batch":
                log_freq = 1
            self.logging_batch_wise = isinstance(log_freq, int)
            self.log_freq = log_freq if self.logging_batch_wise else None
            self.global_batch = 0
            self.global_step = initial_global_step
            if self.logging_batch_wise:
                define_metric("batch/batch_step")
                define_metric("batch/*", step_metric="batch/batch_step")
            else:
                define_metric("epoch/epoch")
                define_metric("epoch/*", step_metric="epoch/epoch")

        def on_epoch_end(self, epoch, logs=None):
            values = {"epoch/%s" % k: v for k, v in (logs or {}).items()}
            values["epoch/epoch"] = epoch
            rate = _keras_learning_rate(self.model, self.global_step)
            if rate is not None:
                values["epoch/learning_rate"] = rate
            log(values)

        def on_batch_end(self, batch, logs=None):
            self.global_step += 1
            if self.logging_batch_wise and batch % self.log_freq == 0:
                values = {"batch/%s" % k: v for k, v in (logs or {}).items()}
                values["batch/batch_step"] = self.global_batch
                rate = _keras_learning_rate(self.model, self.global_step)
                if rate is not None:
                    values["batch/learning_rate"] = rate
                log(values)
                self.global_batch += self.log_freq

        def on_train_batch_end(self, batch, logs=None):
            self.on_batch_end(batch, logs or {})

    return WandbMetricsLogger


def _keras_model_checkpoint(callbacks):
    class WandbModelCheckpoint(callbacks.ModelCheckpoint):
        """Keras' ``ModelCheckpoint`` (the files are written where ``filepath`` says); W&B
        also uploads them as artifacts, which hyperdial does not (one warning)."""

        def __init__(self, filepath, *args, **kwargs):
            super().__init__(filepath, *args, **kwargs)
            _unsupported("integration.keras.WandbModelCheckpoint upload")

    return WandbModelCheckpoint


def _keras_legacy_callback(callbacks):
    class WandbCallback(callbacks.Callback):
        """W&B's older Keras callback (``wandb.keras.WandbCallback``): logs every epoch's
        metrics with ``epoch``, and keeps the best value of ``monitor`` (default
        ``val_loss``; ``mode`` ``"auto"`` maximizes a name holding ``acc``) in the summary as
        ``best_<monitor>`` with ``best_epoch``. Models, gradients, weights and sample
        predictions are not saved or logged (one warning)."""

        def __init__(self, monitor="val_loss", verbose=0, mode="auto", save_model=True,
                     *args, **kwargs):
            super().__init__()
            if run is None:
                raise errors.Error("You must call wandb.init() before WandbCallback()")
            self.monitor = monitor
            if mode == "auto":
                mode = "max" if "acc" in monitor or monitor.startswith("fmeasure") else "min"
            self.maximize = mode == "max"
            self.best = None
            if save_model or any(kwargs.get(k) for k in (
                    "log_weights", "log_gradients", "generator", "data_type",
                    "training_data", "validation_data", "predictions")):
                _unsupported("keras.WandbCallback model saving and media")

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            log(dict(logs, epoch=epoch))
            current = _finite(logs.get(self.monitor))
            if current is None:
                return
            if self.best is None or (current > self.best if self.maximize
                                     else current < self.best):
                self.best = current
                summary["best_%s" % self.monitor] = current
                summary["best_epoch"] = epoch

    return WandbCallback


_KERAS_BUILDERS = {"WandbMetricsLogger": _keras_metrics_logger,
                   "WandbModelCheckpoint": _keras_model_checkpoint,
                   "WandbCallback": _keras_legacy_callback}


def _keras_attribute(name):
    """``wandb.integration.keras.<name>``, built on the installed Keras at first use."""
    builder = _KERAS_BUILDERS.get(name)
    if builder is None:
        raise AttributeError(
            "wandb.integration.keras.%s is not available under hyperdial (it has %s)"
            % (name, ", ".join(sorted(_KERAS_BUILDERS))))
    with _lock:
        if name not in _integration_classes:
            _integration_classes[name] = builder(_keras_callbacks())
        return _integration_classes[name]


# Gradient-boosting callbacks (``wandb.integration.xgboost``, ``wandb.integration.lightgbm``,
# and the older ``wandb.xgboost``, ``wandb.lightgbm``): each boosting round's evaluation
# results become one row, named as W&B names them (``<data>-<metric>`` for XGBoost,
# ``<data>_<metric>`` for LightGBM), losses and errors summarized by their minimum and
# scores by their maximum, as W&B's callbacks define them. Feature-importance charts and
# model artifacts are not recorded.

_LOWER_IS_BETTER = {"rmse", "rmsle", "mae", "mape", "mphe", "logloss", "error", "error@t",
                    "merror", "l1", "l2", "huber", "fair", "poisson", "gamma",
                    "binary_logloss"}
_HIGHER_IS_BETTER = {"auc", "aucpr", "ndcg", "map", "ndcg@n", "map@n", "average_precision"}


def _define_boosting_metric(name, metric):
    """Summarize metric ``name`` (an evaluation result called ``metric`` by the library) by
    its best value: the minimum of losses and errors, the maximum of scores."""
    metric = str(metric).lower()
    if "loss" in metric or metric in _LOWER_IS_BETTER:
        define_metric(name, summary="min")
    elif metric in _HIGHER_IS_BETTER:
        define_metric(name, summary="max")


def _xgboost_old_callback():
    """``wandb.integration.xgboost.wandb_callback()``: XGBoost's old callback style (a function
    of the callback environment): each round's ``evaluation_result_list`` is one row."""

    def callback(env):
        for name, value in env.evaluation_result_list:
            log({name: value}, commit=False)
        log({})

    return callback


def _xgboost_callback_class():
    try:
        import xgboost  # noqa: PLC0415 -- only when asked for
    except ImportError:
        raise ImportError("wandb.integration.xgboost.WandbCallback needs xgboost") from None

    class WandbCallback(xgboost.callback.TrainingCallback):
        """W&B's XGBoost callback: the booster's configuration goes to ``wandb.config``;
        after every round each evaluation result is logged as ``<data>-<metric>`` with
        ``epoch`` (the round) in one row, its summary the best value (``define_metric``);
        after training, ``best_score`` and ``best_iteration`` when the booster has them. The
        model and the feature-importance chart are not recorded (one warning each)."""

        def __init__(self, log_model=False, log_feature_importance=True,
                     importance_type="gain", define_metric=True):
            super().__init__()
            if run is None:
                raise errors.Error("You must call wandb.init() before WandbCallback()")
            self.log_model = log_model
            self.log_feature_importance = log_feature_importance
            self.importance_type = importance_type
            self.define_metric = define_metric

        def before_training(self, model):
            config.update(json.loads(model.save_config()))
            return model

        def after_iteration(self, model, epoch, evals_log):
            for data, metrics in evals_log.items():
                for metric, history in metrics.items():
                    name = "%s-%s" % (data, metric)
                    if self.define_metric:
                        _define_boosting_metric(name, metric)
                    value = history[-1]
                    log({name: value[0] if isinstance(value, tuple) else value},
                        commit=False)
            log({"epoch": epoch})
            self.define_metric = False
            return False

        def after_training(self, model):
            if self.log_model:
                _unsupported("integration.xgboost model artifact")
            if self.log_feature_importance:
                _unsupported("integration.xgboost feature importance chart")
            best = model.attr("best_score")
            if best is not None:
                log({"best_score": float(best),
                     "best_iteration": int(model.attr("best_iteration"))})
            return model

    return WandbCallback


def _xgboost_attribute(name):
    if name == "wandb_callback":
        return _xgboost_old_callback
    if name == "WandbCallback":
        with _lock:
            if "xgboost" not in _integration_classes:
                _integration_classes["xgboost"] = _xgboost_callback_class()
            return _integration_classes["xgboost"]
    raise AttributeError("wandb.integration.xgboost.%s is not available under hyperdial (it "
                         "has WandbCallback, wandb_callback)" % name)


class _LightGBMCallback:
    """What ``wandb.integration.lightgbm.wandb_callback()`` returns: a LightGBM callback
    (called with the callback environment after every iteration)."""

    order = 20
    before_iteration = False

    def __init__(self, log_params, define_metric):
        self.log_params = log_params
        self.define_metric = define_metric

    def __call__(self, env):
        first = env.iteration == getattr(env, "begin_iteration", 0)
        if first and self.log_params:
            config.update(dict(env.params))
        row = {}
        for item in env.evaluation_result_list:
            if len(item) == 4:  # (data, metric, value, higher is better)
                names = {"%s_%s" % (item[0], item[1]): (item[2], item[1])}
            else:  # cross-validation: ("cv_agg", "data metric", mean, better, stdv)
                data, metric = item[1].split()
                names = {"%s_%s-mean" % (data, metric): (item[2], metric),
                         "%s_%s-stdv" % (data, metric): (item[4], metric)}
            for name, (value, metric) in names.items():
                if first and self.define_metric:
                    _define_boosting_metric(name, metric)
                row[name] = value
        log(row, commit=False)
        log({"iteration": env.iteration}, commit=True)


def _lightgbm_wandb_callback(log_params=True, define_metric=True):
    """W&B's LightGBM callback: the parameters go to ``wandb.config`` (``log_params``), every
    iteration's evaluation results are one row (``<data>_<metric>``, with ``iteration``),
    summarized by their best value (``define_metric``)."""
    return _LightGBMCallback(log_params, define_metric)


def _lightgbm_log_summary(model, feature_importance=True, save_model_checkpoint=False):
    """W&B's ``log_summary``: ``best_iteration`` and ``best_score`` of the trained booster
    in the run summary; the feature-importance chart and the model are not recorded."""
    if run is None:
        raise errors.Error("You must call wandb.init() before log_summary()")
    summary["best_iteration"] = model.best_iteration
    summary["best_score"] = _plain_scores(model.best_score)
    if feature_importance:
        _unsupported("integration.lightgbm feature importance chart")
    if save_model_checkpoint:
        _unsupported("integration.lightgbm model checkpoint")


def _plain_scores(scores):
    """LightGBM's ``best_score`` (nested mappings of data and metric to a value) as plain
    dicts, which a summary can hold."""
    if isinstance(scores, collections.abc.Mapping):
        return {str(k): _plain_scores(v) for k, v in scores.items()}
    return scores


def _register_submodules():
    import types  # noqa: PLC0415 -- only here

    def module(path, doc, **attrs):
        name = __name__ + "." + path
        made = types.ModuleType(name, doc)
        made.__dict__.update(attrs)
        sys.modules[name] = made
        parent, _, leaf = name.rpartition(".")
        setattr(sys.modules[parent], leaf, made)
        return made

    module("errors", "``wandb.errors``: the exception classes scripts catch.",
           Error=errors.Error, UsageError=errors.UsageError, CommError=errors.CommError,
           AuthenticationError=errors.AuthenticationError, AgentRunStopped=AgentRunStopped)
    module("util", "``wandb.util``: ``generate_id``.", generate_id=generate_id)
    module("wandb_run", "``wandb.wandb_run``: ``Run``.", Run=Run, RunDisabled=RunDisabled)
    module("sdk", "``wandb.sdk``: the submodules below, and ``init``, ``Settings``, ``Config``, "
           "``Summary``.", init=init, Settings=Settings, Config=Config, Summary=Summary)
    module("sdk.wandb_run", "``wandb.sdk.wandb_run``: ``Run``.", Run=Run)
    module("sdk.wandb_config", "``wandb.sdk.wandb_config``: ``Config``.", Config=Config)
    module("sdk.wandb_summary", "``wandb.sdk.wandb_summary``: ``Summary``.", Summary=Summary)
    module("sdk.wandb_settings", "``wandb.sdk.wandb_settings``: ``Settings``.",
           Settings=Settings)
    module("sdk.lib", "``wandb.sdk.lib``: ``RunDisabled`` and the submodules below.",
           RunDisabled=RunDisabled)
    module("sdk.lib.config_util", "``wandb.sdk.lib.config_util``: ``ConfigError``.",
           ConfigError=ConfigError)
    module("sdk.lib.runid", "``wandb.sdk.lib.runid``: ``generate_id``.",
           generate_id=generate_id)
    module("sdk.lib.disabled", "``wandb.sdk.lib.disabled``: ``RunDisabled``.",
           RunDisabled=RunDisabled)
    keras_doc = ("Keras callbacks: ``WandbMetricsLogger``, ``WandbModelCheckpoint``, "
                 "``WandbCallback``, built on the installed Keras at first use.")
    module("integration", "``wandb.integration``: ``keras``, ``xgboost``, ``lightgbm``.")
    boosting = {
        "xgboost": dict(__getattr__=_xgboost_attribute),
        "lightgbm": dict(wandb_callback=_lightgbm_wandb_callback,
                         log_summary=_lightgbm_log_summary),
    }
    for library, attributes in boosting.items():
        for path in ("integration." + library, library):
            module(path, "``wandb.%s``: W&B's %s callback, recording to hyperdial." % (
                path, library), **attributes)
    module("integration.keras", "``wandb.integration.keras``: " + keras_doc,
           __getattr__=_keras_attribute)
    module("keras", "``wandb.keras`` (W&B's older path): " + keras_doc,
           __getattr__=_keras_attribute)


_register_submodules()
