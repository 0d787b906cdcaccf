"""Multi-objective tasks of the search-quality benchmark, hypervolume, and their report.

``run.py --suite multi`` runs every optimizer on the tasks here and records each trial's
objective vector; ``write`` turns the records into bench/results/quality-multi.md. Every
objective is minimized.

**Tasks.** Four standard synthetic problems and four real trade-offs:

* ``zdt1``, ``zdt2``, ``zdt3`` (Zitzler, Deb and Thiele 2000) with 6 variables in [0, 1]: a
  convex, a concave and a disconnected front.
* ``dtlz2`` (Deb, Thiele, Laumanns and Zitzler 2002) with 3 objectives and 6 variables in
  [0, 1]: the front is the positive octant of the unit sphere.
* ``svm-cancer-mo``: an RBF support-vector classifier on scikit-learn's breast-cancer data (the
  continuous space of the single-objective ``svm-cancer`` task: C and gamma), 3-fold CV error
  against model size, its number of support vectors (mean over the 3 folds), which is also
  what one prediction costs.
* ``enet-diabetes-mo``: an elastic net on the diabetes data (the space of ``enet-diabetes``:
  alpha and l1_ratio), 5-fold CV error (1 − R²) against the features it uses, its number of
  non-zero coefficients (mean over the folds; 0-10): accuracy against sparsity.
* ``forest-wine-mo-list`` and ``mlp-digits-mo-list``: a random forest on wine and an MLP on
  400 digits written the way W&B users write sweeps, every parameter a ``values`` list (the
  spaces of lists.py). The error
  is the configuration's 5-fold CV error from the lookup table (no training during a run); the
  cost is a deterministic proxy: for the forest, split tests per prediction,
  ``n_estimators × max_depth`` (an upper bound: a tree may stop before its maximum depth); for
  the MLP (64 inputs, ``h`` hidden units, 10 classes), weight updates per epoch, its number of
  weights ``65·h + 10·(h + 1)`` times its optimizer steps per epoch, ``ceil(320 / batch_size)``
  (320 training samples per fold).

Costs are counts, never clock times, so a run is reproducible and the machine's load does not
move the front.

**Hypervolume.** Each objective is scaled to [0, 1] by bounds ``[lo, hi]`` and the hypervolume
of the non-dominated set of the first ``b`` trials is measured against the reference point 1.1
in every scaled objective (points beyond it add nothing). It is divided by the hypervolume of
the best known front, so 1 is the best known front and 0 is nothing inside the reference box.
The bounds and best known front are:

* synthetic tasks: the objectives' known ranges over the whole domain (ZDT1/ZDT2: f1 in
  [0, 1], f2 in [0, 10]; ZDT3: f2 in [−0.7733, 10]; DTLZ2: each in [0, 2]) and the analytic
  front (sampled densely: 2,001 points for ZDT, 101 × 101 for DTLZ2);
* values-list tasks: the minimum and maximum of each objective over the task's whole grid, and
  the grid's exact front;
* continuous real tasks: the minimum and maximum of each objective over every trial of every
  optimizer in the records (the pooled worst and best), and the front of all those trials
  pooled. These two numbers move when optimizers are added to a run.
"""

import bisect
import math

HV_REF = 1.1
BUDGETS = (20, 50, 100)


# --------------------------------------------------------------------------------------------
# Pareto dominance and hypervolume (pure Python: the sets are at most a few thousand points)


def dominates(a, b):
    """True when ``a`` is no worse than ``b`` in every objective and better in one (minimizing)."""
    better = False
    for x, y in zip(a, b):
        if x > y:
            return False
        if x < y:
            better = True
    return better


def _finite(p):
    return all(math.isfinite(x) for x in p)


def pareto_front(points):
    """The non-dominated points of ``points`` (each a sequence of floats, minimized), without
    duplicates, sorted. Points with a non-finite objective are ignored."""
    pts = sorted({tuple(p) for p in points if _finite(p)})
    if pts and len(pts[0]) == 2:
        front = []
        for p in pts:  # x ascending: a point is kept when its y is below every earlier y
            if not front or p[1] < front[-1][1]:
                front.append(p)
        return front
    front = []
    for p in pts:
        # Sorted lexicographically: only an earlier point can dominate p.
        if not any(dominates(q, p) for q in front):
            front.append(p)
    return front


def _hv2(pts, ref):
    volume, prev_y = 0.0, ref[1]
    for x, y in sorted(pts):
        if y < prev_y:
            volume += (ref[0] - x) * (prev_y - y)
            prev_y = y
    return volume


def _hv3(pts, ref):
    """Sweep along the third objective, keeping the 2-D front (a staircase sorted by x) of the
    points below the sweep and its area."""
    pts = sorted(pts, key=lambda p: (p[2], p[0], p[1]))
    stair, area, volume = [], 0.0, 0.0
    for i, (x, y, z) in enumerate(pts):
        k = bisect.bisect_left(stair, (x, -math.inf))
        dominated = (k > 0 and stair[k - 1][1] <= y) or \
            (k < len(stair) and stair[k][0] == x and stair[k][1] <= y)
        if not dominated:
            j = k
            while j < len(stair) and stair[j][1] >= y:
                j += 1
            stair[k:j] = [(x, y)]
            area = _hv2(stair, ref)
        top = pts[i + 1][2] if i + 1 < len(pts) else ref[2]
        volume += area * (top - z)
    return volume


def hypervolume(points, ref):
    """Volume of the region dominated by ``points`` and bounded above by ``ref`` (minimizing;
    any number of objectives, exact). Points not strictly below ``ref`` in every objective add
    nothing. Two objectives: a sweep; three: a sweep along the third with a 2-D staircase; more:
    slices along the last objective."""
    pts = [tuple(p) for p in points
           if _finite(p) and all(x < r for x, r in zip(p, ref))]
    if not pts:
        return 0.0
    m = len(ref)
    if m == 1:
        return ref[0] - min(p[0] for p in pts)
    if m == 2:
        return _hv2(pts, ref)
    if m == 3:
        return _hv3(pts, ref)
    pts = pareto_front(pts)
    pts.sort(key=lambda p: p[-1])
    volume = 0.0
    for i, p in enumerate(pts):
        top = pts[i + 1][-1] if i + 1 < len(pts) else ref[-1]
        if top > p[-1]:
            volume += (top - p[-1]) * hypervolume([q[:-1] for q in pts[:i + 1]], ref[:-1])
    return volume


def scale(points, lo, hi):
    """Each objective mapped from [lo, hi] to [0, 1] (a zero range maps to 0)."""
    return [tuple((x - a) / (b - a) if b > a else 0.0 for x, a, b in zip(p, lo, hi))
            for p in points]


def normalized_hv(points, lo, hi, best_hv):
    """Hypervolume of ``points`` scaled by [lo, hi] against the reference point 1.1, divided by
    ``best_hv`` (that of the best known front, scaled the same way)."""
    if best_hv <= 0:
        return 0.0
    m = len(lo)
    return hypervolume(scale(points, lo, hi), [HV_REF] * m) / best_hv


# --------------------------------------------------------------------------------------------
# Tasks


def _x(p, d):
    return [p["x%d" % i] for i in range(d)]


def zdt1(p):
    x = _x(p, 6)
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return [x[0], g * (1 - math.sqrt(x[0] / g))]


def zdt2(p):
    x = _x(p, 6)
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return [x[0], g * (1 - (x[0] / g) ** 2)]


def zdt3(p):
    x = _x(p, 6)
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    r = x[0] / g
    return [x[0], g * (1 - math.sqrt(r) - r * math.sin(10 * math.pi * x[0]))]


def dtlz2(p):
    x = _x(p, 6)
    m = 3
    g = sum((v - 0.5) ** 2 for v in x[m - 1:])
    c = [math.cos(v * math.pi / 2) for v in x[:m - 1]]
    s = [math.sin(v * math.pi / 2) for v in x[:m - 1]]
    return [(1 + g) * c[0] * c[1], (1 + g) * c[0] * s[1], (1 + g) * s[0]]


def _zdt_front(kind, n=2001):
    pts = []
    for i in range(n):
        f1 = i / (n - 1)
        if kind == "zdt1":
            f2 = 1 - math.sqrt(f1)
        elif kind == "zdt2":
            f2 = 1 - f1 ** 2
        else:
            f2 = 1 - math.sqrt(f1) - f1 * math.sin(10 * math.pi * f1)
        pts.append((f1, f2))
    return pareto_front(pts)


def _dtlz2_front(n=101):
    pts = []
    for i in range(n):
        for j in range(n):
            a, b = i / (n - 1) * math.pi / 2, j / (n - 1) * math.pi / 2
            pts.append((math.cos(a) * math.cos(b), math.cos(a) * math.sin(b), math.sin(a)))
    return pts


# Training samples of one fold of the MLP table (400 digits, 5-fold CV).
MLP_TRAIN_SAMPLES = 320


def mlp_weights(hidden):
    """Fitted weights of a one-hidden-layer MLP on the digits (64 inputs, 10 classes)."""
    return 65 * int(hidden) + 10 * (int(hidden) + 1)


def svm_cancer_mo(p):
    import warnings
    from sklearn.model_selection import KFold, cross_validate
    from sklearn.svm import SVC
    import run as bench
    X, y = bench._data("breast_cancer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = cross_validate(SVC(C=p["C"], gamma=p["gamma"]), X, y,
                             cv=KFold(3, shuffle=True, random_state=0), return_estimator=True)
    support = [int(est.n_support_.sum()) for est in out["estimator"]]
    return [1.0 - float(out["test_score"].mean()), sum(support) / len(support)]


def enet_diabetes_mo(p):
    import warnings
    from sklearn.linear_model import ElasticNet
    from sklearn.model_selection import KFold, cross_validate
    import run as bench
    X, y = bench._data("diabetes")
    model = ElasticNet(alpha=p["alpha"], l1_ratio=p["l1_ratio"], max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = cross_validate(model, X, y, cv=KFold(5, shuffle=True, random_state=0),
                             return_estimator=True)
    nonzero = [int((abs(est.coef_) > 0).sum()) for est in out["estimator"]]
    return [1.0 - float(out["test_score"].mean()), sum(nonzero) / len(nonzero)]


def _list_cost(base, cfg):
    """The cost proxy of a values-list configuration (a dict of the list values)."""
    if base == "forest-wine":
        return float(int(cfg["n_estimators"]) * int(cfg["max_depth"]))
    steps = -(-MLP_TRAIN_SAMPLES // int(cfg["batch_size"]))
    return float(mlp_weights(cfg["hidden"]) * steps)


class ListTask:
    """A two-objective values-list task: the error from lists.py's table, a counted cost."""

    def __init__(self, base):
        import lists
        self.base = base
        self.lookup = lists.lookup(base + "-list")
        self.names = [p["name"] for p in self.lookup.space]
        self.points = [(e, _list_cost(base, dict(zip(self.names, cfg))))
                       for e, cfg in zip(self.lookup.true, self.lookup.configs)]

    def __call__(self, params):
        i = self.lookup.index(params)
        return list(self.points[i])


_LIST_TASKS = {}


def _list_task(base):
    if base not in _LIST_TASKS:
        _LIST_TASKS[base] = ListTask(base)
    return _LIST_TASKS[base]


def _box(d):
    import run as bench
    return [bench.P("x%d" % i, "float", 0.0, 1.0) for i in range(d)]


def tasks():
    """The multi-objective tasks: name -> {f, space, objectives, kind, bounds, front}.
    ``kind``: synthetic | real | list. ``bounds`` and ``front`` are known for synthetic and
    list tasks (``front`` as a callable, computed when first needed) and None for real ones."""
    import run as bench
    import lists
    zdt_lo_hi = {"zdt1": ([0.0, 0.0], [1.0, 10.0]), "zdt2": ([0.0, 0.0], [1.0, 10.0]),
                 "zdt3": ([0.0, -0.7733], [1.0, 10.0])}
    out = {}
    for name, f in (("zdt1", zdt1), ("zdt2", zdt2), ("zdt3", zdt3)):
        out[name] = {"f": f, "space": _box(6), "objectives": ["f1", "f2"], "kind": "synthetic",
                     "bounds": zdt_lo_hi[name], "front": (lambda n=name: _zdt_front(n))}
    out["dtlz2"] = {"f": dtlz2, "space": _box(6), "objectives": ["f1", "f2", "f3"],
                    "kind": "synthetic", "bounds": ([0.0] * 3, [2.0] * 3),
                    "front": _dtlz2_front}
    out["svm-cancer-mo"] = {"f": svm_cancer_mo, "space": bench.TASKS["svm-cancer"]["space"],
                            "objectives": ["error", "support_vectors"], "kind": "real",
                            "bounds": None, "front": None}
    out["enet-diabetes-mo"] = {"f": enet_diabetes_mo,
                               "space": bench.TASKS["enet-diabetes"]["space"],
                               "objectives": ["error", "features"], "kind": "real",
                               "bounds": None, "front": None}
    for base, cost in (("forest-wine", "tests"), ("mlp-digits", "updates")):
        out[base + "-mo-list"] = {
            "f": (lambda params, b=base: _list_task(b)(params)),
            "space": lists.SPACES[base], "objectives": ["error", cost], "kind": "list",
            "bounds": (lambda b=base: _grid_bounds(b)),
            "front": (lambda b=base: pareto_front(_list_task(b).points))}
    return out


def _grid_bounds(base):
    pts = _list_task(base).points
    m = len(pts[0])
    return [min(p[i] for p in pts) for i in range(m)], [max(p[i] for p in pts) for i in range(m)]


# --------------------------------------------------------------------------------------------
# Scores and the report


def _finite_points(values):
    return [tuple(v) for v in values
            if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and
                                                   math.isfinite(x) for x in v)]


def references(records, task_specs):
    """task -> (lo, hi, best_hv): the scaling bounds and the hypervolume of the best known
    front, scaled (see the module doc)."""
    out = {}
    for t, spec in task_specs.items():
        if spec["kind"] == "real":
            pooled = [p for r in records if r.get("task") == t
                      for p in _finite_points(r.get("values", []))]
            if not pooled:
                continue
            m = len(spec["objectives"])
            lo = [min(p[i] for p in pooled) for i in range(m)]
            hi = [max(p[i] for p in pooled) for i in range(m)]
            front = pareto_front(pooled)
        else:
            bounds = spec["bounds"]
            lo, hi = bounds() if callable(bounds) else bounds
            front = spec["front"]()
        best = hypervolume(scale(front, lo, hi), [HV_REF] * len(lo))
        out[t] = (lo, hi, best)
    return out


def scores(records, task_specs, optimizers):
    """(optimizer, task, seed) -> {budget: normalized hypervolume} for every run that reached
    the budget (the longest record of a run wins)."""
    refs = references(records, task_specs)
    runs = {}
    for r in records:
        if r.get("optimizer") not in optimizers or r.get("task") not in refs:
            continue
        key = (r["optimizer"], r["task"], r["seed"])
        if key not in runs or len(r["values"]) > len(runs[key]):
            runs[key] = r["values"]
    out = {}
    for key, values in runs.items():
        lo, hi, best = refs[key[1]]
        out[key] = {b: normalized_hv(_finite_points(values[:b]), lo, hi, best)
                    for b in BUDGETS if len(values) >= b}
    return out, refs


def summarize(sc, optimizers, tasks):
    """budget -> label -> (mean normalized hypervolume, mean rank, groups) over the (task, seed)
    groups of ``tasks`` where every label reached the budget; rank 1 = largest hypervolume,
    ties share a rank."""
    import report
    seeds = sorted({s for (_, _, s) in sc})
    out = {}
    for b in BUDGETS:
        hv = {o: [] for o in optimizers}
        rk = {o: [] for o in optimizers}
        n = 0
        for t in tasks:
            for s in seeds:
                row = [sc.get((o, t, s), {}).get(b) for o in optimizers]
                if any(v is None for v in row):
                    continue
                n += 1
                ranks = report._ranks([-round(v, 12) for v in row])
                for o, v, k in zip(optimizers, row, ranks):
                    hv[o].append(v)
                    rk[o].append(k)
        out[b] = {o: (sum(hv[o]) / n if n else None, sum(rk[o]) / n if n else None, n)
                  for o in optimizers}
    return out


def write(records, path, command, note, optimizers, tasks, task_specs):
    """Write the markdown report of the multi-objective suite to ``path``."""
    import os
    import time
    import report
    specs = {t: task_specs[t] for t in tasks}
    sc, refs = scores(records, specs, optimizers)
    failures = [r for r in records if r.get("status") != "ok" and r.get("optimizer") in
                optimizers and r.get("task") in tasks]
    seeds = sorted({s for (_, _, s) in sc})
    L = ["# Multi-objective search quality: hyperdial against Optuna", ""]
    L.append("Generated by `bench/quality/run.py --suite multi` (report: "
             "`bench/quality/multi.py`) on %s, hyperdial commit `%s`."
             % (time.strftime("%Y-%m-%d %H:%M"), report._git()))
    L.append("")
    if note:
        L += ["**What was run:** " + note, ""]
    L += ["Command: `%s`" % command, ""]
    L += ["Machine: %s. The machine is shared with other work, so wall times are noisy."
          % report._machine(), ""]
    L.append("Peers: " + ", ".join("%s %s" % kv for kv in report._versions().items()
                                   if kv[0] in ("optuna", "scikit-learn", "numpy", "torch"))
             + ".")
    binaries = sorted({(r["optimizer"], r["binary"]) for r in records
                       if r.get("binary") and r["optimizer"] in optimizers})
    if binaries:
        L += ["", "hyperdial builds: " + "; ".join("`%s`: %s" % ob for ob in binaries) + "."]
    L += ["", "Records: %d (optimizer, task, seed) runs over seeds %s; %d job(s) ended with a "
          "timeout or an error." % (len(sc), report._seed_text(seeds), len(failures)), ""]
    L += ["**Tasks.** ZDT1, ZDT2, ZDT3 (6 variables, 2 objectives) and DTLZ2 (6 variables, "
          "3 objectives); two real trade-offs on scikit-learn data sets, CV error against a "
          "counted model size (RBF SVM on breast cancer: support vectors; elastic net on "
          "diabetes: non-zero coefficients); two more "
          "written as W&B `values` lists (random forest on wine, MLP on digits), the error "
          "read from the lookup tables of the `lists` suite and the cost a counted proxy "
          "(forest: `n_estimators × max_depth` "
          "split tests per prediction; MLP: weight updates per epoch, weights × "
          "`ceil(320 / batch_size)`). Costs are counts, not clock times, so "
          "every run is reproducible. `bench/quality/multi.py` defines them.", ""]
    L += ["**Normalized hypervolume** at budget b: the non-dominated set of the first b trials, "
          "each objective scaled to [0, 1] by bounds [lo, hi], measured against the reference "
          "point 1.1 in every scaled objective, divided by the hypervolume of the best known "
          "front scaled the same way (1 = the best known front). Bounds and front: synthetic "
          "tasks, the objectives' known ranges over the domain and the analytic front; "
          "`-list` tasks, the whole grid's ranges and exact front; the two continuous real "
          "tasks, the ranges and the front of every trial of every optimizer pooled. Ranks: "
          "per (task, seed), 1 = largest hypervolume, ties share a rank.", ""]
    L += ["**Optimizers.** `hyperdial-tpe` (multi-objective TPE), `hyperdial-bayes` (ParEGO "
          "scalarization), `hyperdial-random`: a sweep with a `metrics:` list on a real "
          "`hyperdial server`, driven by the Python client (`Sweep.ask`/`Sweep.tell` with a "
          "dict of values). Optuna: `NSGAIISampler`, `TPESampler` and `GPSampler` (both "
          "multi-objective when the study has several directions), `RandomSampler`, each with "
          "its defaults and the seed. A values list is `suggest_categorical` for Optuna and "
          "`values:` for hyperdial.", ""]
    # Labels with fewer runs than the others (a slow optimizer run on some seeds only) are
    # left out of the main tables, which compare every label on the same (task, seed) groups,
    # and compared on their own groups in a table of their own.
    count = {o: sum(1 for (oo, t, s), v in sc.items() if oo == o and 100 in v)
             for o in optimizers}
    most = max(count.values(), default=0)
    partial = [o for o in optimizers if count[o] < most]
    full = [o for o in optimizers if o not in partial]
    all_optimizers, optimizers = optimizers, full
    groups = [("All tasks", tasks),
              ("Synthetic (ZDT, DTLZ2)", [t for t in tasks if specs[t]["kind"] == "synthetic"]),
              ("Real trade-offs", [t for t in tasks if specs[t]["kind"] != "synthetic"])]
    L += ["## Mean normalized hypervolume (mean rank)", ""]
    for title, ts in groups:
        if not ts:
            continue
        sm = summarize(sc, optimizers, ts)
        L += ["### %s (%d)" % (title, len(ts)), ""]
        L.append("| optimizer | " + " | ".join("@%d" % b for b in BUDGETS) + " |")
        L.append("| --- |" + " ---: |" * len(BUDGETS))
        order = sorted(optimizers, key=lambda o: -(sm[100][o][0] or 0))
        for o in order:
            cells = []
            for b in BUDGETS:
                m, k, _ = sm[b][o]
                cells.append("–" if m is None else "%.4f (%.2f)" % (m, k))
            L.append("| %s | %s |" % (o, " | ".join(cells)))
        L.append("| *(task, seed) groups* | %s |" % " | ".join(
            str(sm[b][optimizers[0]][2]) if optimizers else "0" for b in BUDGETS))
        L.append("")
        if title == "All tasks":
            for b in (50, 100):
                best = max(optimizers, key=lambda o: sm[b][o][0] or -1)
                hyper = [o for o in optimizers if o.startswith("hyperdial")]
                if hyper and sm[b][best][0] is not None:
                    top = max(hyper, key=lambda o: sm[b][o][0] or -1)
                    L.append("At %d trials the best mean is `%s` (%.4f); hyperdial's best is "
                             "`%s` (%.4f, %+.4f)." % (b, best, sm[b][best][0], top,
                                                      sm[b][top][0],
                                                      sm[b][top][0] - sm[b][best][0]))
            L.append("")
    for o in partial:
        sub = {k: v for k, v in sc.items() if (k[1], k[2]) in
               {(t, s) for (oo, t, s), vv in sc.items() if oo == o and 100 in vv}}
        sm = summarize(sub, optimizers + [o], tasks)
        L += ["### `%s` on the %d (task, seed) groups it ran" % (o, count[o]), ""]
        L.append("| optimizer | " + " | ".join("@%d" % b for b in BUDGETS) + " |")
        L.append("| --- |" + " ---: |" * len(BUDGETS))
        for oo in sorted(optimizers + [o], key=lambda x: -(sm[100][x][0] or 0)):
            L.append("| %s | %s |" % (oo, " | ".join(
                "–" if sm[b][oo][0] is None else "%.4f (%.2f)" % (sm[b][oo][0], sm[b][oo][1])
                for b in BUDGETS)))
        L.append("")
    optimizers = all_optimizers
    L += ["## Per task: mean normalized hypervolume ± standard error", ""]
    for b in (50, 100):
        L += ["### At %d trials" % b, ""]
        L.append("| task | " + " | ".join(optimizers) + " |")
        L.append("| --- |" + " ---: |" * len(optimizers))
        for t in tasks:
            cells = []
            means = {}
            for o in optimizers:
                xs = [sc[(o, t, s)][b] for s in seeds if b in sc.get((o, t, s), {})]
                m, se = report._mean_se(xs)
                means[o] = m
                cells.append("–" if m is None else ("%.4f" % m if se is None
                                                     else "%.4f ± %.4f" % (m, se)))
            top = max((m for m in means.values() if m is not None), default=None)
            cells = ["**%s**" % c if means[o] is not None and means[o] == top else c
                     for o, c in zip(optimizers, cells)]
            L.append("| %s | %s |" % (t, " | ".join(cells)))
        L.append("")
    L += ["## Scaling bounds of each task", ""]
    L.append("| task | objectives | lo | hi | best known front's hypervolume (scaled) |")
    L.append("| --- | --- | --- | --- | ---: |")
    for t in tasks:
        if t in refs:
            lo, hi, best = refs[t]
            L.append("| %s | %s | %s | %s | %.4f |" % (
                t, ", ".join(specs[t]["objectives"]), ", ".join("%.4g" % x for x in lo),
                ", ".join("%.4g" % x for x in hi), best))
    L.append("")
    L += ["## Time per suggestion", ""]
    L.append("| optimizer | mean | mean of trials 81–100 | whole run (mean) |")
    L.append("| --- | ---: | ---: | ---: |")
    for o in optimizers:
        xs = [x for r in records if r.get("optimizer") == o and r.get("task") in tasks
              for x in (r.get("suggest_s") or [])]
        late = [x for r in records if r.get("optimizer") == o and r.get("task") in tasks
                for x in (r.get("suggest_s") or [])[80:100]]
        walls = [r["wall_s"] for r in records if r.get("optimizer") == o and
                 r.get("task") in tasks and r.get("wall_s") is not None]
        L.append("| %s | %s | %s | %s |" % (o, report._ms(report._avg(xs)),
                                            report._ms(report._avg(late)),
                                            report._ms(report._avg(walls))))
    L.append("")
    if failures:
        L += ["## Failed jobs", ""]
        for r in failures[:20]:
            last = (r.get("error") or "").strip().splitlines()
            L.append("- %s %s seed %s: %s %s" % (r["optimizer"], r["task"], r["seed"],
                                                  r["status"], last[-1] if last else ""))
        L.append("")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(L))
