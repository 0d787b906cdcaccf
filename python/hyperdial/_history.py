"""Reading a run's metric history back from the server: ``history()`` and ``scan_history()``
(:class:`_HistoryReader`, shared by a live :class:`Run` and a :class:`Trial` read back).

Every point is read in pages of packed columns (``GET /runs/{id}/history/packed``, base64 of
little-endian numbers), or at most ``max_points`` per metric, sampled by the server; the
result is one dict per step, columns, or a pandas DataFrame (pandas is imported only then).
A key the run never logged gives no values and a ``UserWarning`` naming the closest known key.
"""

import array
import base64
import difflib
import numbers
import sys
import urllib.parse
import warnings

from . import _settings
from ._transport import _SendError, _call, _error_text


_SAMPLED_KEYS = 64  # metrics in one answer of the downsampled history (the server's cap)
_MIN_MAX_POINTS, _MAX_MAX_POINTS = 10, 100000  # the server's range for max_points


def _history_path(run_id, keys, after_step=None, limit=None):
    path = "/api/v1/runs/%s/history/packed" % urllib.parse.quote(run_id, safe="")
    query = []
    if keys:
        query.append("keys=" + urllib.parse.quote(",".join(keys), safe=","))
    if after_step is not None:
        query.append("after_step=%d" % after_step)
    if limit is not None:
        query.append("limit=%d" % limit)
    return path + ("?" + "&".join(query) if query else "")


def _history_keys(keys):
    """``keys`` as a list of names (None for every metric); a name holding a comma cannot
    be asked for (the API separates names with commas)."""
    if keys is None:
        return None
    if isinstance(keys, str):
        keys = [keys]
    out = []
    for key in keys:
        if not isinstance(key, str) or not key:
            raise TypeError("hyperdial: history keys are metric names, got %r" % (key,))
        if "," in key:
            raise ValueError("hyperdial: a metric name with a comma (%r) cannot be asked for; "
                             "read every metric (keys=None) instead" % key)
        if key not in out:
            out.append(key)
    return out or None


def _unpack(code, text, count):
    """A packed list of the history answer: base64 of ``count`` little-endian 8-byte numbers
    (``code`` ``"q"``: signed integers, ``"d"``: doubles), as a Python list."""
    values = array.array(code)
    values.frombytes(base64.b64decode(text))
    if len(values) != count:
        raise RuntimeError("hyperdial: a packed history list holds %d values, not %d"
                           % (len(values), count))
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def _unpacked(page):
    """A ``GET /runs/{id}/history/packed`` answer as ``(steps, time_ms, columns)`` lists:
    ``None`` where a metric has no value, ``float("nan")`` where the value logged was not
    finite."""
    count = page.get("count")
    if not isinstance(count, int) or not isinstance(page.get("columns"), dict):
        raise RuntimeError("hyperdial: the server's history answer is not packed columns: %r"
                           % (str(page)[:200],))
    steps = _unpack("q", page["steps"], count)
    stamps = _unpack("q", page["time_ms"], count)
    non_finite = page.get("non_finite") or {}
    nan = float("nan")
    columns = {}
    for name, text in page["columns"].items():
        column = _unpack("d", text, count)
        total = sum(column)  # NaN exactly when some value is (the packed lists hold no inf)
        if total != total:
            column = [None if v != v else v for v in column]
            for i in non_finite.get(name, ()):
                column[i] = nan
        columns[name] = column
    return steps, stamps, columns


def _not_found(err, run_id, server):
    """The error to raise for a ``404`` of a history read: KeyError for an unknown run,
    RuntimeError for a server without the route (one older than this client)."""
    text = _error_text(err)
    if text.startswith("no route"):
        return RuntimeError("hyperdial: the server at %s cannot serve a run's history to this "
                            "client (%s); it is older than the client" % (server, text))
    return KeyError("hyperdial: no run %r on %s" % (run_id, server))


_KNOWN_KEYS_SHOWN = 20  # metric names a warning about unknown keys lists at most


def _warn_unknown_keys(run_id, asked, answer, stacklevel):
    """Warn (``warnings.warn``, a UserWarning) when ``keys`` asked for names the run never
    logged: they have no points, so the history holds nothing for them, as in W&B, but a
    misspelt name should not pass unnoticed. Names the unknown keys, the closest known name
    of each, and the run's metrics (at most ``_KNOWN_KEYS_SHOWN`` of them). ``answer`` is a
    history answer (its ``unknown_keys``; from ``keys``, every metric of the run, for a
    server that does not send them). ``stacklevel`` counts from the caller of this."""
    if not asked or not isinstance(answer, dict):
        return
    known = sorted(k for k in answer.get("keys") or () if isinstance(k, str))
    unknown = answer.get("unknown_keys")
    if not isinstance(unknown, list):
        known_set = set(known)
        unknown = [k for k in asked if k not in known_set]
    if not unknown:
        return
    logged = "its metrics are " + _listed(known) if known else "it has logged no metric yet"
    warnings.warn(
        "hyperdial: run %s never logged %s (asked for in keys=), so the history has no "
        "values for %s; %s%s" % (
            run_id, ", ".join(repr(k) for k in unknown),
            "it" if len(unknown) == 1 else "them", logged, _did_you_mean(unknown, known)),
        UserWarning, stacklevel=stacklevel + 1)


def _listed(names):
    """``names`` (sorted) for a message: the first ``_KNOWN_KEYS_SHOWN``, and how many more."""
    more = len(names) - _KNOWN_KEYS_SHOWN
    return ", ".join(names[:_KNOWN_KEYS_SHOWN]) + (" and %d more" % more if more > 0 else "")


def _did_you_mean(unknown, known):
    """`` (did you mean 'loss' for 'los'?)`` for the names of ``unknown`` that have a close
    name among ``known``; "" when none has."""
    guesses = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            guesses.append("%r for %r" % (close[0], name))
    return " (did you mean %s?)" % ", ".join(guesses) if guesses else ""


def _history_pages(transport, run_id, keys, after_step=None, limit=None, stacklevel=None):
    """Each answer of ``GET /runs/{id}/history/packed`` from ``after_step`` on, following
    ``next_after_step`` until the last step, unpacked (see :func:`_unpacked`). With
    ``stacklevel`` (how many frames above this generator's the user's code is), keys the run
    never logged are warned about once, at the first answer (:func:`_warn_unknown_keys`)."""
    first = True
    while True:
        page = _call(transport, "GET", _history_path(run_id, keys, after_step, limit),
                     ok_statuses=(404,), timeout=_settings.HISTORY_TIMEOUT)
        if isinstance(page, _SendError):
            raise _not_found(page, run_id, transport.server)
        if not isinstance(page, dict):
            raise RuntimeError("hyperdial: the server's history answer is not JSON")
        if first and stacklevel is not None:
            _warn_unknown_keys(run_id, keys, page, stacklevel + 1)
        first = False
        yield _unpacked(page)
        after_step = page.get("next_after_step")
        if not page.get("truncated") or after_step is None:
            return


_ROW_MAKERS = {}  # number of columns -> a function making one dict per row (see _row_maker)


def _row_maker(width):
    """A function ``f(keys, columns)`` giving ``[{keys[0]: a, keys[1]: b, ...} for a, b, ...
    in zip(*columns)]`` for ``width`` columns, written out as a dict display: about twice as
    fast as ``dict(zip(keys, row))`` per row. Only numbered identifiers go into the source,
    never a metric name (names are passed in ``keys``), as ``collections.namedtuple`` does."""
    maker = _ROW_MAKERS.get(width)
    if maker is None:
        ks = ["k%d" % i for i in range(width)]
        vs = ["v%d" % i for i in range(width)]
        source = "def make(keys, columns):\n    %s, = keys\n    return [{%s} for %s, in zip(*columns)]\n" % (
            ", ".join(ks), ", ".join("%s: %s" % kv for kv in zip(ks, vs)), ", ".join(vs))
        scope = {}
        exec(source, scope)  # noqa: S102 -- identifiers only, see above
        maker = _ROW_MAKERS[width] = scope["make"]
    return maker


def _as_rows(steps, stamps, columns):
    """One dict per step: ``_step``, ``_timestamp`` and each metric with a value there."""
    dense = [(name, col) for name, col in columns.items() if None not in col]
    sparse = [(name, col) for name, col in columns.items() if None in col]
    names = ["_step", "_timestamp"] + [name for name, _ in dense]
    # Columns without gaps go into the dicts at once; gaps are left out, one column at a
    # time. Up to 256 columns by a dict display (see _row_maker), more by dict(zip()).
    lists = [steps, stamps] + [col for _, col in dense]
    if len(names) <= 256:
        rows = _row_maker(len(names))(names, lists)
    else:
        rows = [dict(zip(names, values)) for values in zip(*lists)]
    for name, col in sparse:
        for row, value in zip(rows, col):
            if value is not None:
                row[name] = value
    return rows


def _read_history(transport, run_id, keys=None, max_points=None, columns=False, pandas=False):
    """The body of ``history()`` (see :meth:`_HistoryReader.history`)."""
    keys = _history_keys(keys)
    if max_points is not None:
        if isinstance(max_points, bool) or not isinstance(max_points, numbers.Integral) \
                or not _MIN_MAX_POINTS <= max_points <= _MAX_MAX_POINTS:
            raise ValueError("hyperdial: max_points must be an integer from %d to %d (or None "
                             "for every point), got %r"
                             % (_MIN_MAX_POINTS, _MAX_MAX_POINTS, max_points))
        steps, stamps, cols = _sampled_history(transport, run_id, keys, int(max_points))
    else:
        steps, stamps, cols = [], [], {}
        # The frames above the generator's to the caller's: _read_history, history(), it.
        for page_steps, page_stamps, page_cols in _history_pages(
                transport, run_id, keys, limit=_settings.HISTORY_PAGE_STEPS, stacklevel=3):
            if not steps:
                steps, stamps, cols = page_steps, page_stamps, page_cols
                continue
            before, added = len(steps), len(page_steps)
            steps.extend(page_steps)
            stamps.extend(page_stamps)
            # A run still logging may have a new metric by the next page.
            for name, col in page_cols.items():
                cols.setdefault(name, [None] * before).extend(col)
            for col in cols.values():
                if len(col) < before + added:
                    col.extend([None] * (before + added - len(col)))
    stamps = [t / 1000.0 for t in stamps]
    if pandas:
        import pandas as pd  # only when asked for
        frame = {"_step": steps, "_timestamp": stamps}
        frame.update(cols)
        return pd.DataFrame(frame)
    if columns:
        out = {"_step": steps, "_timestamp": stamps}
        out.update(cols)
        return out
    return _as_rows(steps, stamps, cols)


def _sampled_history(transport, run_id, keys, max_points):
    """At most ``max_points`` points per metric (``GET /runs/{id}/history?max_points=``,
    evenly spaced by step), merged into columns over the union of their steps. The server
    samples at most ``_SAMPLED_KEYS`` metrics an answer, so more are asked for in groups."""
    asked = keys is not None
    if keys is None:
        # Every metric's name, from a one-step page of the whole history.
        first = _call(transport, "GET", _history_path(run_id, None, limit=1),
                      ok_statuses=(404,), timeout=_settings.HISTORY_TIMEOUT)
        if isinstance(first, _SendError):
            raise _not_found(first, run_id, transport.server)
        keys = list((first or {}).get("keys") or [])
    series = {}
    merged = {"keys": None, "unknown_keys": []}
    for start in range(0, max(len(keys), 1), _SAMPLED_KEYS):
        group = keys[start:start + _SAMPLED_KEYS]
        if not group:
            break
        path = "/api/v1/runs/%s/history?max_points=%d&keys=%s" % (
            urllib.parse.quote(run_id, safe=""), max_points,
            urllib.parse.quote(",".join(group), safe=","))
        answer = _call(transport, "GET", path, ok_statuses=(404,),
                       timeout=_settings.HISTORY_TIMEOUT)
        if isinstance(answer, _SendError):
            raise _not_found(answer, run_id, transport.server)
        series.update((answer or {}).get("series") or {})
        if isinstance(answer, dict):
            merged["keys"] = answer.get("keys")
            unknown = answer.get("unknown_keys")
            if isinstance(unknown, list) and isinstance(merged["unknown_keys"], list):
                merged["unknown_keys"].extend(unknown)
            else:
                merged["unknown_keys"] = None  # a server without it: worked out from keys
    if asked:
        # The frames above this one to the caller's: _read_history, history(), it.
        _warn_unknown_keys(run_id, keys, merged, 4)
    times = {}
    for s in series.values():
        for step, t in zip(s["step"], s["time_ms"]):
            if t > times.get(step, -1):
                times[step] = t
    steps = sorted(times)
    row_of = {step: i for i, step in enumerate(steps)}
    nan = float("nan")
    cols = {}
    for name, s in series.items():
        col = [None] * len(steps)
        for step, value in zip(s["step"], s["value"]):
            col[row_of[step]] = nan if value is None else value  # a null logged is NaN
        cols[name] = col
    return steps, [times[s] for s in steps], cols


class _HistoryReader:
    """``history()`` and ``scan_history()`` for an object with a run ``id`` and a
    ``_history_transport()``."""

    def history(self, keys=None, max_points=None, columns=False, pandas=False):
        """The run's metric history as stored on the server.

        By default every point (no sampling), as a list with one dict per step in step order:
        ``{"_step": 3, "_timestamp": 1764501234.5, "loss": 0.41, ...}``, holding the metrics
        that have a value at that step (``_timestamp`` is the wall time in seconds since the
        epoch). A value logged as NaN or an infinity reads back as ``float("nan")``.

        * ``keys`` -- only these metrics (a list of names), and only the steps where at least
          one of them has a value; default every metric.
        * ``max_points`` -- at most this many points per metric, evenly spaced by step (the
          first and the last kept; 10 to 100,000, else ``ValueError``), instead of every point.
        * ``columns=True`` -- a dict of lists instead: ``"_step"``, ``"_timestamp"`` and one
          list per metric, entry ``i`` for step ``i``, ``None`` where a metric has no value.
        * ``pandas=True`` -- a ``pandas.DataFrame`` of those columns (NaN where a metric has
          no value); pandas is imported only then.

        A history longer than one answer of the server (1,000,000 values) is read in several
        requests. Raises KeyError for an unknown run. A name in ``keys`` that the run never
        logged has no values (as in W&B: no rows for it), and a ``UserWarning`` names it,
        the closest known name, and the run's metrics.
        """
        return _read_history(self._history_transport(), self.id, keys, max_points, columns,
                             pandas)

    def scan_history(self, keys=None, page_size=1000, min_step=None, max_step=None):
        """Iterate over the run's history one step (a dict as :meth:`history` gives) at a
        time, reading ``page_size`` steps per request: for a history too long to hold whole.
        Only steps ``min_step <= step < max_step`` when given."""
        if isinstance(page_size, bool) or not isinstance(page_size, numbers.Integral) \
                or page_size < 1:
            raise ValueError("hyperdial: page_size must be a positive integer, got %r"
                             % (page_size,))
        transport = self._history_transport()
        after = None if min_step is None else int(min_step) - 1
        # The frames above the generator's to the caller's: this generator, then it.
        for steps, stamps, columns in _history_pages(transport, self.id, _history_keys(keys),
                                                     after, int(page_size), stacklevel=2):
            for row in _as_rows(steps, [t / 1000.0 for t in stamps], columns):
                if max_step is not None and row["_step"] >= max_step:
                    return
                yield row
