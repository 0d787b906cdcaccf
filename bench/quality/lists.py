"""Values-list tasks of the search-quality benchmark: finite spaces, lookup tables, noise.

W&B users write most sweep parameters as ``values`` lists: geometric lists for learning rates
and regularization (``[1e-4, 3e-4, 1e-3]``), powers of two for sizes, small integer lists, and
a categorical or two. The tasks here are the tuning tasks of ``run.py`` (and two of its
synthetic functions) written that way: 3-6 parameters, 286-4,096 configurations each; and
three larger noisy grids (below) of 4,096-62,208 configurations, 6-9 parameters.

**Tables.** Every configuration of a tuning task was evaluated once, ahead of time, by
``make_tables.py``; the results are CSV files in ``tables/`` (one row per configuration: the
parameter values, then ``r0`` … ``r4``). Replicate ``r`` is the error on fold ``r`` of one
shuffled 5-fold split of the data set (``KFold(5, shuffle=True, random_state=0)``), with the
model's own random state (forests, MLP, random coordinate descent) also set to ``r``: one
replicate is what one training run scored on one validation split. Evaluating a configuration
during a benchmark run is a lookup, so 10 seeds × 100 trials × every optimizer cost no
training.

**True value and noise.** A configuration's true value is the mean of its 5 replicates (its
5-fold CV error). A deterministic task (``<name>-list``) returns the true value. A noisy task
(``<name>-list-noisy``) returns the true value plus one replicate's residual: trial ``i`` of
seed ``s`` uses replicate ``k = k(s, i)``, drawn uniformly from 0-4 by a generator seeded by the
task and the seed only (every optimizer meets the same sequence of draws), and returns
``true[c] + (rep[c][k] − true[c]) − (fold_mean[k] − grand_mean)``, where ``fold_mean[k]`` is
fold ``k``'s mean error over the whole grid. Subtracting it removes what makes one fold easier
than another for every configuration alike, which a user who validates on one fixed split never
sees as noise; what is left is the configuration's own spread between folds and training seeds,
of the size a user sees between two runs of the same configuration. A configuration evaluated
twice may score differently. Observations are centred values and may fall below 0.

**Regret under noise.** After ``b`` trials the incumbent is the trial with the best observed
value among the first ``b`` (the earliest on ties), the same rule for every optimizer; its
regret is computed from its configuration's true value. On deterministic tasks this is the
ordinary best-so-far.

The synthetic list tasks (Hartmann-6 on a 4-point grid per axis, Rosenbrock-5 on the integers
−2 … 2) are computed, not stored: the grid is evaluated in full when the task is first used.

**Large noisy grids.** Three more tasks are noisy only and computed: they have the shape of the
spaces users sweep when every run trains a network, larger than the tables above and with
noise whose size depends on the configuration (heteroscedastic), as it does when bad settings
train unstably:

- ``hartmann6-list-noisy``: the Hartmann-6 grid with Gaussian noise of standard deviation
  ``0.25 + 0.35·(f(x) − f*)/(median − f*)`` clipped to [0.25, 0.6] (in units of the function).
- ``mlp9-list-noisy``: a 9-parameter MLP-like space of 62,208 configurations (learning rate,
  batch size, schedule, two activations, two dropouts, two widths; lists of 2-6 values, three
  of them string categoricals). Its synthetic validation loss couples the best learning rate
  to the batch size, capacity to dropout, diverges above a batch-dependent learning rate, and
  carries multiplicative noise (10% of the loss, plus a floor).
- ``cell6-list-noisy``: a 6-edge cell of 15,625 configurations, each edge one of five string
  operations. Its synthetic error rewards convolutions on a connected path from input to
  output, a residual skip, and depth, punishes a disconnected cell (chance error), and carries
  noise larger for worse cells.

Their noise is drawn per trial as a standard normal from the same seeded generator (the same
draws for every optimizer) and scaled by the configuration's standard deviation; the true
value is the function without noise.
"""

import csv
import itertools
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
TABLES = os.path.join(HERE, "tables")
REPLICATES = 5


def V(name, values):
    """One ``values`` parameter: the list as a W&B sweep file writes it."""
    return {"name": name, "kind": "values", "choices": list(values), "low": None,
            "high": None, "log": False}


# The spaces, as a user would write them in a sweep file. Learning rates and regularization
# strengths are geometric lists, sizes powers of two, counts small integer lists.
SPACES = {
    "svm-cancer": [
        V("C", [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000]),
        V("gamma", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1]),
        V("kernel", ["rbf", "sigmoid"]),
    ],
    "enet-diabetes": [
        V("alpha", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10]),
        V("l1_ratio", [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]),
        V("max_iter", [2, 5, 10, 20, 50, 1000]),
        V("selection", ["cyclic", "random"]),
    ],
    "forest-wine": [
        V("n_estimators", [4, 8, 16, 32, 64]),
        V("max_depth", [1, 2, 3, 5, 8]),
        V("min_samples_split", [2, 4, 8, 16]),
        V("max_features", [0.1, 0.2, 0.4, 0.7, 1.0]),
        V("criterion", ["gini", "entropy"]),
    ],
    "mlp-digits": [
        V("hidden", [16, 32, 64, 128]),
        V("alpha", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]),
        V("lr", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]),
        V("batch_size", [16, 32, 64, 128]),
        V("activation", ["relu", "tanh", "logistic"]),
    ],
    "hartmann6": [V("x%d" % i, [0.125, 0.375, 0.625, 0.875]) for i in range(6)],
    "rosenbrock5": [V("x%d" % i, [-2, -1, 0, 1, 2]) for i in range(5)],
}
TABLE_TASKS = ["svm-cancer", "enet-diabetes", "forest-wine", "mlp-digits"]
SYNTHETIC_TASKS = ["hartmann6", "rosenbrock5"]

SPACES["mlp9"] = [
    V("lr", [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1]),
    V("batch_size", [8, 16, 32, 64]),
    V("schedule", ["cosine", "constant"]),
    V("activation_1", ["relu", "tanh"]),
    V("activation_2", ["relu", "tanh"]),
    V("dropout_1", [0.0, 0.3, 0.6]),
    V("dropout_2", [0.0, 0.3, 0.6]),
    V("units_1", [16, 32, 64, 128, 256, 512]),
    V("units_2", [16, 32, 64, 128, 256, 512]),
]
CELL_OPS = ["none", "skip", "conv1x1", "conv3x3", "avgpool"]
# Edges of a 4-node cell, (to, from): node 0 is the input, node 3 the output.
CELL_EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
SPACES["cell6"] = [V("edge_%d_%d" % e, CELL_OPS) for e in CELL_EDGES]


def mlp9(p):
    """(true loss, noise sd) of the MLP-like task."""
    lr = math.log10(p["lr"])
    bs = math.log2(p["batch_size"] / 8)  # 0 … 3
    # The best learning rate grows with the batch size (about 10^-2.6 at 8, 10^-1.6 at 64).
    best_lr = -2.6 + bs / 3.0
    opt = 0.35 * (lr - best_lr) ** 2
    if p["schedule"] == "cosine":
        opt *= 0.7
    # Divergence above a batch-dependent learning rate, damped by dropout.
    if lr > best_lr + 0.9:
        opt += 0.8 * (1.0 - 0.5 * max(p["dropout_1"], p["dropout_2"]))
    cap = (math.log2(p["units_1"]) + math.log2(p["units_2"]) - 8.0) / 10.0  # 0 … 1
    under = 0.5 * (1.0 - cap) ** 2
    drop = (p["dropout_1"] + 0.6 * p["dropout_2"]) / 0.96  # 0 … 1
    over = 0.45 * cap * (1.0 - drop) ** 2 + 0.25 * (1.0 - cap) * drop
    act = {("relu", "relu"): 0.0, ("relu", "tanh"): 0.03, ("tanh", "relu"): 0.06,
           ("tanh", "tanh"): 0.12}[(p["activation_1"], p["activation_2"])]
    act *= 1.0 + cap
    loss = 0.2 * math.exp(opt + under + over + act)
    return loss, 0.01 + 0.1 * loss


def cell6(p):
    """(true error, noise sd) of the cell task."""
    ops = {e: p["edge_%d_%d" % e] for e in CELL_EDGES}
    # Longest path of learned operations (convolutions) reaching each node; None: cut off.
    depth = {0: 0}
    for node in (1, 2, 3):
        best = None
        for (to, frm), op in ops.items():
            if to != node or op == "none" or depth.get(frm) is None:
                continue
            d = depth[frm] + (1 if op.startswith("conv") else 0)
            best = d if best is None else max(best, d)
        depth[node] = best
    if depth[3] is None:
        return 0.9, 0.002
    gain = {"none": 0.0, "skip": 0.15, "conv1x1": 0.6, "conv3x3": 1.0, "avgpool": 0.25}
    score = sum(gain[op] for op in ops.values())
    score += 0.6 * min(depth[3], 3)
    if ops[(3, 0)] == "skip":
        score += 0.5
    skips = sum(op == "skip" for op in ops.values())
    score -= 0.3 * max(0, skips - 2)
    pools = sum(op == "avgpool" for op in ops.values())
    score -= 0.2 * max(0, pools - 1)
    err = 0.055 + 0.4 * math.exp(-score / 1.6)
    return err, 0.006 + 0.05 * (err - 0.055)


# Computed noisy tasks: base -> a function of a configuration's params returning
# (true value, noise sd). hartmann6's noise depends on the grid, so it is set in Lookup.
COMPUTED_NOISY = {"hartmann6": None, "mlp9": mlp9, "cell6": cell6}


def grid(space):
    """Every configuration of a finite space, in ``itertools.product`` order of the lists."""
    return list(itertools.product(*[p["choices"] for p in space]))


def table_path(base):
    return os.path.join(TABLES, base + ".csv")


def _format(v):
    return v if isinstance(v, str) else repr(v)


def write_table(base, rows):
    """``rows``: one list of REPLICATES errors per configuration, in ``grid`` order."""
    space = SPACES[base]
    configs = grid(space)
    assert len(rows) == len(configs)
    os.makedirs(TABLES, exist_ok=True)
    with open(table_path(base), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([p["name"] for p in space] + ["r%d" % r for r in range(REPLICATES)])
        for cfg, reps in zip(configs, rows):
            w.writerow([_format(v) for v in cfg] + ["%.6g" % x for x in reps])


def read_table(base):
    """The replicates of every configuration, in ``grid`` order. Raises ``ValueError`` when
    the file does not hold exactly the space's grid (a stale table)."""
    space = SPACES[base]
    configs = grid(space)
    index = {tuple(_format(v) for v in cfg): i for i, cfg in enumerate(configs)}
    out = [None] * len(configs)
    with open(table_path(base), newline="") as f:
        r = csv.reader(f)
        header = next(r)
        names = [p["name"] for p in space]
        if header[:len(names)] != names or len(header) != len(names) + REPLICATES:
            raise ValueError("%s: header %r does not match the space" % (base, header))
        for row in r:
            key = tuple(row[:len(names)])
            i = index.get(key)
            if i is None or out[i] is not None:
                raise ValueError("%s: row %r is not in the space or is repeated" % (base, row))
            out[i] = [float(x) for x in row[len(names):]]
    if any(x is None for x in out):
        raise ValueError("%s: the table misses %d configurations; run make_tables.py"
                         % (base, sum(x is None for x in out)))
    return out


class Lookup:
    """A finite task: true value and observation of each configuration of its grid."""

    def __init__(self, base, noisy):
        self.base = base
        self.space = SPACES[base]
        self.noisy = noisy
        self.configs = grid(self.space)
        if base in TABLE_TASKS:
            self.replicates = read_table(base)
            self.true = [sum(r) / len(r) for r in self.replicates]
            grand = sum(self.true) / len(self.true)
            n = len(self.replicates)
            self.fold_offset = [sum(r[k] for r in self.replicates) / n - grand
                                for k in range(REPLICATES)]
        else:
            names = [p["name"] for p in self.space]
            self.replicates = None
            f = COMPUTED_NOISY.get(base)
            if f is not None:
                pairs = [f(dict(zip(names, cfg))) for cfg in self.configs]
                self.true = [t for t, _ in pairs]
                self.sd = [s for _, s in pairs]
            else:
                import run as bench
                f = bench.TASKS[base]["f"]
                self.true = [float(f(dict(zip(names, cfg)))) for cfg in self.configs]
        self.fingerprint = self._fingerprint()
        self.best = min(self.true)
        self.median = sorted(self.true)[len(self.true) // 2] if len(self.true) % 2 else \
            0.5 * sum(sorted(self.true)[len(self.true) // 2 - 1:len(self.true) // 2 + 1])
        if noisy and base == "hartmann6":
            scale = self.median - self.best
            self.sd = [min(0.6, max(0.25, 0.25 + 0.35 * (t - self.best) / scale))
                       for t in self.true]
        # Each value of each list, by its formatted text and by number, to its position.
        self._pos = []
        for p in self.space:
            self._pos.append({_format(v): j for j, v in enumerate(p["choices"])})

    def _fingerprint(self):
        """A short hash of the space and of the table (or of the synthetic grid's values):
        records made with another table are stale and are not used."""
        import hashlib
        h = hashlib.sha1(repr([(p["name"], p["choices"]) for p in self.space]).encode())
        if self.replicates is not None:
            with open(table_path(self.base), "rb") as f:
                h.update(f.read())
        else:
            h.update(repr(self.true).encode())
            if self.noisy:
                h.update(b"noise")
                h.update(repr(self._sd_of_base()).encode())
        return h.hexdigest()[:12]

    def _sd_of_base(self):
        """A description of the computed noise, for the fingerprint."""
        f = COMPUTED_NOISY.get(self.base)
        if f is None:
            return "0.25 + 0.35 * (f - f*) / (median - f*), clipped to [0.25, 0.6]"
        names = [p["name"] for p in self.space]
        return [f(dict(zip(names, cfg)))[1] for cfg in self.configs[:: max(1, len(self.configs) // 97)]]

    def index(self, params):
        """The grid index of a suggestion. Raises ``ValueError`` when a value is not one of
        its list's values (a search must only propose listed values)."""
        i = 0
        for p, pos in zip(self.space, self._pos):
            v = params[p["name"]]
            if hasattr(v, "item"):
                v = v.item()
            j = pos.get(_format(v))
            if j is None and isinstance(v, (int, float)) and not isinstance(v, bool):
                for k, c in enumerate(p["choices"]):
                    if isinstance(c, (int, float)) and math.isclose(v, c, rel_tol=1e-9,
                                                                     abs_tol=1e-12):
                        j = k
                        break
            if j is None:
                raise ValueError("%s=%r is not one of the listed values %r"
                                 % (p["name"], v, p["choices"]))
            i = i * len(p["choices"]) + j
        return i

    def draws(self, seed):
        """The replicate drawn for each trial of a seed: the same for every optimizer."""
        rng = random.Random("%s/%d" % (self.base, seed))
        computed = self.noisy and self.replicates is None
        while True:
            yield rng.gauss(0.0, 1.0) if computed else rng.randrange(REPLICATES)

    def observe(self, idx, draw):
        """(observed value, true value) of configuration ``idx`` with replicate ``draw``."""
        if self.noisy and self.replicates is not None:
            return self.replicates[idx][draw] - self.fold_offset[draw], self.true[idx]
        if self.noisy:
            return self.true[idx] + self.sd[idx] * draw, self.true[idx]
        return self.true[idx], self.true[idx]

    def noise_summary(self):
        """The noise of the noisy task: mean over configurations of the standard deviation of
        their observations (the replicates less the fold offsets), over the whole grid and over
        its best 10% (by true value)."""
        if self.replicates is None:
            if not self.noisy:
                return None
            order = sorted(range(len(self.sd)), key=lambda i: self.true[i])
            top = order[:max(1, len(order) // 10)]
            return sum(self.sd) / len(self.sd), sum(self.sd[i] for i in top) / len(top)
        sds = []
        for reps in self.replicates:
            obs = [x - o for x, o in zip(reps, self.fold_offset)]
            m = sum(obs) / len(obs)
            sds.append(math.sqrt(sum((x - m) ** 2 for x in obs) / (len(obs) - 1)))
        order = sorted(range(len(sds)), key=lambda i: self.true[i])
        top = order[:max(1, len(order) // 10)]
        return sum(sds) / len(sds), sum(sds[i] for i in top) / len(top)


def tasks():
    """The values-list tasks: name -> (base task, noisy)."""
    out = {}
    for base in SYNTHETIC_TASKS + TABLE_TASKS:
        out[base + "-list"] = (base, False)
    for base in TABLE_TASKS + list(COMPUTED_NOISY):
        out[base + "-list-noisy"] = (base, True)
    return out


_LOOKUPS = {}


def lookup(task):
    """The (cached) Lookup of a values-list task name."""
    if task not in _LOOKUPS:
        base, noisy = tasks()[task]
        _LOOKUPS[task] = Lookup(base, noisy)
    return _LOOKUPS[task]
