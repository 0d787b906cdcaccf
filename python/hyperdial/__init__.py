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
it for its runs); a certificate that does not verify is an error, never retried.

The package uses only the standard library (Python 3.8 or newer). This file only re-exports
the public names of private modules with one job each:

* ``_run.py`` -- :func:`init`, :class:`Run`, :class:`Summary`, :func:`log`, :func:`finish`;
* ``_values.py`` -- :class:`Config` and the conversion of config, summary and metric values;
* ``_sinks.py`` -- where a run's records go (server, offline file, nowhere) and the spill file;
* ``_transport.py`` -- HTTP(S) to the server: kept connections, TLS, retried calls, errors;
* ``_history.py`` -- reading a run's history back (``history()``, ``scan_history()``);
* ``_sweep.py`` -- ask/tell: :class:`Sweep`, :class:`Trial`, ``optimize``;
* ``_local_server.py`` -- finding a server, or starting a local one, for a sweep or an Api;
* ``_api.py`` -- :class:`Api`, the read API; ``_query.py`` -- W&B's run filters and orders;
* ``_lr_range.py`` -- the LR range test;
* ``_errors.py`` -- the warning and exception classes, and the warnings on stderr;
* ``_settings.py`` -- the version, the default server, the tunables and the environment;
* ``_states.py`` -- the run and sweep state words, generated from the server's definitions.

The reference is docs/python.md.
"""

from ._states import IN_FLIGHT_RUN_STATES, RUN_STATES, TERMINAL_RUN_STATES, RunState
from ._settings import DEFAULT_SERVER, __version__
from ._errors import (ConfigWarning, HyperdialWarning, NoMetricError, QueryWarning, TrialPruned,
                      ValueWarning)
from ._values import Config
from ._run import Run, Summary, exit_code_of, finish, init, log
from ._sweep import Sweep, Trial
from ._api import Api
from ._lr_range import (LR_RANGE_SUMMARY_KEY, LRRangeTest, lr_range_schedule, lr_range_suggestion,
                        lr_range_test, smooth_losses)

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

# The public classes and functions keep the package as their module, as when they were
# defined in this file: tracebacks print ``hyperdial.NoMetricError``, ``help()`` and pickles
# name ``hyperdial.Config``.
for _public in (Api, Config, ConfigWarning, HyperdialWarning, LRRangeTest, NoMetricError,
                QueryWarning, Run, Summary, Sweep, Trial, TrialPruned, ValueWarning, exit_code_of,
                finish, init, log, lr_range_schedule, lr_range_suggestion, lr_range_test,
                smooth_losses):
    _public.__module__ = __name__
del _public

#: The current run, set by :func:`init` and cleared by :func:`finish`.
run = None
#: The current run's :class:`Config`, set by :func:`init`.
config = None
#: The current run's :class:`Summary`, set by :func:`init`.
summary = None
