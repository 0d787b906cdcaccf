"""The warnings and exceptions of the package, and how it tells the user things.

:func:`_warn` writes one line on standard error, prefixed ``[hyperdial]`` (never raises, even
with stderr closed at shutdown): for what goes wrong in the background (a server away,
metrics spilled). The classes here are the public warning and exception classes
(re-exported by the package); a ``warnings.warn`` of this package points at the user's line
through :func:`_user_stacklevel`.
"""

import sys


_WARN_PREFIX = "[hyperdial] "


def _warn(message):
    try:
        sys.stderr.write(_WARN_PREFIX + message + "\n")
        sys.stderr.flush()
    except Exception:  # stderr closed at shutdown: nothing better to do
        pass


def _user_stacklevel():
    """The ``stacklevel`` of a ``warnings.warn`` call made in this package that makes the
    warning point at the first frame outside it (the user's line), however deep the call."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and _is_own_frame(frame):
        frame = frame.f_back
        level += 1
    return level


def _is_own_frame(frame):
    """Whether ``frame`` runs code of this package or of its W&B-compatible module (the
    ``wandb`` module that imports the package as ``_hd``)."""
    module = frame.f_globals.get("__name__") or ""
    if module == __package__ or module.startswith(__package__ + "."):
        return True
    return module == "wandb" and frame.f_globals.get("_hd") is sys.modules.get(__package__)


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
