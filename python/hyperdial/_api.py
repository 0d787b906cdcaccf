"""The read API, W&B's ``wandb.Api()``: :class:`Api` reads runs and sweeps back from a server,
from any process, by id or W&B path (``entity/project/id``, whose entity and project are
ignored), and lists a project's runs with W&B's filters and orders (see :mod:`._query`).
"""

import urllib.parse

from . import _settings
from ._local_server import _local_store_hint, _sweep_server
from ._query import _all_runs, _check_field, _order_key, _pushed_sweep, _run_filter, _sorted_runs
from ._sweep import Sweep, Trial, _Closable
from ._transport import _SendError, _Transport, _call


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
        self.token = token if token is not None else _settings.env("HYPERDIAL_TOKEN")
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
