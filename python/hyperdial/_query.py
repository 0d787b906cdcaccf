"""Listing runs and W&B's run queries: every run ``GET /api/v1/runs`` gives (read in
pages), filtered by W&B's MongoDB-style ``filters`` and sorted by its ``order``
(:meth:`Api.runs`, :meth:`Sweep.best_run`).

Filters and orders are applied here, on the runs as the server sends them; only a ``sweep``
the filter requires is passed to the server. An unknown field, operator or run state raises
ValueError; an order on a key no run has warns (:class:`QueryWarning`).
"""

import collections.abc
import difflib
import numbers
import re
import time
import urllib.parse
import warnings

from ._errors import QueryWarning, _user_stacklevel
from ._history import _listed
from ._local_server import _local_store_hint
from ._states import RUN_STATES
from ._transport import _SendError, _call


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
