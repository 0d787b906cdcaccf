#!/usr/bin/env python3
"""Search quality on conditional spaces: hyperdial's `when:` against Optuna's define-by-run.

    cargo build --release -p hyperdial-cli
    OMP_NUM_THREADS=1 nice -n 19 python3 bench/quality/conditional.py --seeds 10 --budget 100

Each task is a space in which some parameters exist only for some values of others (an
optimizer's own settings, a kernel's own settings, one width per layer). hyperdial receives
it as a sweep file with `when:` keys; Optuna and random search receive it *define-by-run*:
each parameter is suggested only inside the `if` that makes it exist, in the listed order.

Optimizers: hyperdial-tpe, hyperdial-bayes (through the Python client and a local server),
optuna-tpe (``TPESampler(seed=...)``, Optuna's default, independent per parameter),
optuna-tpe-group (``TPESampler(multivariate=True, group=True)``, Optuna's mode for
define-by-run spaces) and random (define-by-run uniform draws).

Tasks:

- ``cond-synthetic``: a model choice among three branches with their own parameters, one of
  them with a per-layer width for each of up to three layers, plus a shared learning rate;
  a sum of bowls in log or linear coordinates, minimum 0 (net, 3 layers).
- ``cond-branin-rosenbrock``: a choice between two functions on their own variables:
  Branin on (x0, x1), shifted to a minimum of 0, or a 4-d Rosenbrock scaled by 1/100
  plus 0.1 (minimum 0.1).
- ``cond-svm-cancer``: SVC on the breast-cancer data (3-fold error, at most 5,000 solver
  iterations): the kernel chooses which of gamma, degree and coef0 exist.

Each (optimizer, task, seed) runs ``--budget`` trials; budgets 20 and 50 are the prefixes of
the 100-trial runs. Normalized regret at budget b is (best value in the first b trials − f*)
/ (ref − f*): f* is the known optimum (synthetic) or the best value any optimizer found,
ref the median of every value random search saw on the task. Records go to
bench/results/quality-conditional.jsonl (resumable), the report to
bench/results/quality-conditional.md.
"""

import argparse
import concurrent.futures
import json
import math
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "python"))
sys.path.insert(0, HERE)

import run as harness  # noqa: E402  (the quality harness: data sets, server, binary)

OPTIMIZERS = ["hyperdial-tpe", "hyperdial-bayes", "optuna-tpe", "optuna-tpe-group", "random"]
BUDGETS = [20, 50, 100]


def F(name, low, high, log=False, when=None):
    return {"name": name, "kind": "float", "low": low, "high": high, "log": log,
            "when": when or {}}


def I(name, low, high, log=False, when=None):
    return {"name": name, "kind": "int", "low": low, "high": high, "log": log,
            "when": when or {}}


def C(name, choices, when=None):
    return {"name": name, "kind": "cat", "choices": choices, "when": when or {}}


def active(p, params):
    """Whether `p` exists given the parameters drawn so far (parents come first)."""
    return all(parent in params and params[parent] in values
               for parent, values in p["when"].items())


# --------------------------------------------------------------------------------------------
# Tasks.

def synthetic(p):
    f = 0.3 * (math.log10(p["lr"]) + 2.5) ** 2
    if p["model"] == "linear":
        f += 0.6 + 0.05 * (math.log10(p["reg"]) + 3) ** 2 + (p["l1_ratio"] - 0.3) ** 2
    elif p["model"] == "tree":
        f += 0.4 + ((p["depth"] - 7) / 6) ** 2 + 0.5 * (math.log(p["min_leaf"] / 5) / 2) ** 2
    else:
        layers = p["layers"]
        f += {1: 0.5, 2: 0.2, 3: 0.0}[layers]
        f += ((math.log2(p["width1"]) - 7) / 3) ** 2
        if layers >= 2:
            f += ((math.log2(p["width2"]) - 5) / 3) ** 2
        if layers == 3:
            f += ((math.log2(p["width3"]) - 4) / 3) ** 2
        f += 2 * (p["dropout"] - 0.2) ** 2
    return f


def svm_cancer(p):
    from sklearn.svm import SVC
    kw = {"C": p["C"], "kernel": p["kernel"]}
    if p["kernel"] in ("rbf", "poly"):
        kw["gamma"] = p["gamma"]
    if p["kernel"] == "poly":
        kw.update(degree=p["degree"], coef0=p["coef0"])
    return harness._cv_error(SVC(max_iter=5000, **kw), "breast_cancer")


def branin_rosenbrock(p):
    if p["function"] == "branin":
        return harness.branin({"x0": p["x0"], "x1": p["x1"]}) - 0.397887
    ys = [p["y%d" % i] for i in range(4)]
    return 0.1 + sum(100 * (b - a * a) ** 2 + (1 - a) ** 2 for a, b in zip(ys, ys[1:])) / 100


TASKS = {
    "cond-synthetic": {"f": synthetic, "opt": 0.0, "space": [
        C("model", ["linear", "tree", "net"]),
        F("lr", 1e-4, 1.0, log=True),
        F("reg", 1e-6, 1.0, log=True, when={"model": ["linear"]}),
        F("l1_ratio", 0.0, 1.0, when={"model": ["linear"]}),
        I("depth", 1, 12, when={"model": ["tree"]}),
        I("min_leaf", 1, 50, log=True, when={"model": ["tree"]}),
        C("layers", [1, 2, 3], when={"model": ["net"]}),
        I("width1", 8, 256, log=True, when={"model": ["net"]}),
        I("width2", 8, 256, log=True, when={"layers": [2, 3]}),
        I("width3", 8, 256, log=True, when={"layers": [3]}),
        F("dropout", 0.0, 0.5, when={"model": ["net"]}),
    ]},
    "cond-svm-cancer": {"f": svm_cancer, "opt": None, "space": [
        C("kernel", ["linear", "rbf", "poly"]),
        F("C", 1e-3, 1e3, log=True),
        F("gamma", 1e-5, 1e1, log=True, when={"kernel": ["rbf", "poly"]}),
        I("degree", 2, 5, when={"kernel": ["poly"]}),
        F("coef0", 0.0, 1.0, when={"kernel": ["poly"]}),
    ]},
    "cond-branin-rosenbrock": {"f": branin_rosenbrock, "opt": 0.0, "space": [
        C("function", ["branin", "rosenbrock"]),
        F("x0", -5.0, 10.0, when={"function": ["branin"]}),
        F("x1", 0.0, 15.0, when={"function": ["branin"]}),
    ] + [F("y%d" % i, -2.048, 2.048, when={"function": ["rosenbrock"]}) for i in range(4)]},
}


# --------------------------------------------------------------------------------------------
# Optimizers: run(space, seed, budget, evaluate).

def sweep_parameters(space):
    """The space as sweep-file parameters with `when:`."""
    out = {}
    for p in space:
        if p["kind"] == "cat":
            spec = {"values": list(p["choices"])}
        elif p["kind"] == "int":
            spec = ({"distribution": "q_log_uniform_values", "min": p["low"], "max": p["high"],
                     "q": 1} if p["log"] else
                    {"distribution": "int_uniform", "min": p["low"], "max": p["high"]})
        else:
            spec = {"distribution": "log_uniform_values" if p["log"] else "uniform",
                    "min": float(p["low"]), "max": float(p["high"])}
        if p["when"]:
            spec["when"] = {k: list(v) for k, v in p["when"].items()}
        out[p["name"]] = spec
    return out


def opt_hyperdial(method):
    def go(space, seed, budget, evaluate):
        import hyperdial
        config = {"method": method, "metric": {"name": "loss", "goal": "minimize"},
                  "parameters": sweep_parameters(space), "run_cap": budget,
                  "name": "conditional"}
        sweep = hyperdial.Sweep.create(config, server=os.environ["HYPERDIAL_BENCH_SERVER"],
                                       seed=seed + 1, project="conditional")
        for _ in range(budget):
            trial = sweep.ask()
            if trial is None:
                break
            params = dict(trial.params)
            wanted = {p["name"] for p in space if active(p, params)}
            if set(params) != wanted:
                raise SystemExit("inactive or missing parameters: %s" % sorted(params))
            sweep.tell(trial, evaluate(params))
    return go


def opt_optuna(group):
    def go(space, seed, budget, evaluate):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = (optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
                   if group else optuna.samplers.TPESampler(seed=seed))
        study = optuna.create_study(sampler=sampler, direction="minimize")
        for _ in range(budget):
            trial = study.ask()
            params = {}
            for p in space:
                if not active(p, params):
                    continue
                if p["kind"] == "cat":
                    params[p["name"]] = trial.suggest_categorical(p["name"], p["choices"])
                elif p["kind"] == "int":
                    params[p["name"]] = trial.suggest_int(p["name"], p["low"], p["high"],
                                                          log=p["log"])
                else:
                    params[p["name"]] = trial.suggest_float(p["name"], p["low"], p["high"],
                                                            log=p["log"])
            study.tell(trial, evaluate(params))
    return go


def opt_random(space, seed, budget, evaluate):
    import numpy as np
    rng = np.random.default_rng(seed)
    for _ in range(budget):
        params = {}
        for p in space:
            if not active(p, params):
                continue
            if p["kind"] == "cat":
                params[p["name"]] = p["choices"][rng.integers(len(p["choices"]))]
            elif p["log"]:
                v = math.exp(rng.uniform(math.log(p["low"]), math.log(p["high"])))
                params[p["name"]] = (min(p["high"], max(p["low"], round(v)))
                                     if p["kind"] == "int" else v)
            elif p["kind"] == "int":
                params[p["name"]] = int(rng.integers(p["low"], p["high"] + 1))
            else:
                params[p["name"]] = float(rng.uniform(p["low"], p["high"]))
        evaluate(params)


RUNNERS = {
    "hyperdial-tpe": opt_hyperdial("tpe"),
    "hyperdial-bayes": opt_hyperdial("bayes"),
    "optuna-tpe": opt_optuna(False),
    "optuna-tpe-group": opt_optuna(True),
    "random": opt_random,
}


def run_job(job):
    optimizer, task, seed, budget = job
    values = []
    t0 = time.time()

    def evaluate(params):
        v = float(TASKS[task]["f"](params))
        values.append(v)
        return v

    RUNNERS[optimizer](TASKS[task]["space"], seed, budget, evaluate)
    return {"optimizer": optimizer, "task": task, "seed": seed, "values": values,
            "seconds": round(time.time() - t0, 1)}


# --------------------------------------------------------------------------------------------
# Report.

def report(records, path, command, tasks):
    opts = [o for o in OPTIMIZERS if any(r["optimizer"] == o for r in records)]
    # Only seeds every optimizer finished count, so each mean is over the same seeds.
    complete = {(t, s) for t in tasks for s in {r["seed"] for r in records}
                if all(any(r["task"] == t and r["seed"] == s and r["optimizer"] == o
                           for r in records) for o in opts)}
    records = [r for r in records if (r["task"], r["seed"]) in complete]
    tasks = [t for t in tasks if any(r["task"] == t for r in records)]
    lines = ["# Search quality on conditional spaces", "",
             "Generated by `bench/quality/conditional.py` (its docstring describes the tasks, "
             "the optimizers and the regret). Command:", "", "    " + command, "",
             "Mean normalized regret (0 is the optimum, 1 a typical random configuration; "
             "lower is better) ± standard error over seeds; the best mean per row in bold. "
             "The last rows average each optimizer's rank (1 = best) over the tasks.", ""]
    ranks = {b: {o: [] for o in opts} for b in BUDGETS}
    for task in tasks:
        rs = [r for r in records if r["task"] == task]
        fstar = TASKS[task]["opt"]
        if fstar is None:
            fstar = min(min(r["values"]) for r in rs)
        rand = [v for r in rs if r["optimizer"] == "random" for v in r["values"]]
        ref = statistics.median(rand) if rand else max(v for r in rs for v in r["values"])
        seeds = sorted({r["seed"] for r in rs})
        lines.append("## %s (%d seeds; f* = %.4g, ref = %.4g)" % (task, len(seeds), fstar, ref))
        lines.append("")
        lines.append("| budget | " + " | ".join(opts) + " |")
        lines.append("|---|" + "---|" * len(opts))
        for b in BUDGETS:
            cells, means = [], {}
            for o in opts:
                regrets = [(min(r["values"][:b]) - fstar) / (ref - fstar)
                           for r in rs if r["optimizer"] == o and len(r["values"]) >= b]
                if not regrets:
                    cells.append("")
                    continue
                m = statistics.mean(regrets)
                se = statistics.stdev(regrets) / math.sqrt(len(regrets)) \
                    if len(regrets) > 1 else 0.0
                means[o] = m
                cells.append("%.3f ± %.3f" % (m, se))
            if means:
                best = min(means.values())
                cells = ["**%s**" % c if o in means and means[o] == best else c
                         for o, c in zip(opts, cells)]
                # Ties share the better rank.
                for o in means:
                    ranks[b][o].append(1 + sum(m < means[o] for m in means.values()))
            lines.append("| %d | " % b + " | ".join(cells) + " |")
        lines.append("")
    lines.append("## Mean rank over the tasks")
    lines.append("")
    lines.append("| budget | " + " | ".join(opts) + " |")
    lines.append("|---|" + "---|" * len(opts))
    for b in BUDGETS:
        lines.append("| %d | " % b + " | ".join(
            "%.2f" % statistics.mean(ranks[b][o]) if ranks[b][o] else "" for o in opts) + " |")
    lines.append("")
    secs = {o: statistics.mean(r["seconds"] for r in records if r["optimizer"] == o)
            for o in opts}
    lines.append("Mean wall time of one run (all trials, evaluations included), seconds: " +
                 ", ".join("%s %.1f" % (o, s) for o, s in secs.items()) + ". Measured "
                 "under `nice -n 19` on a shared 2-core machine busy with other work, and "
                 "hyperdial's times include its HTTP round trips: not a speed comparison.")
    lines.append("")
    lines.append("How the spaces reach each optimizer: hyperdial gets a sweep file whose "
                 "per-branch parameters carry `when:` (docs/config.md, \"Conditional "
                 "parameters\"); every suggestion is checked to hold exactly the active "
                 "parameters. Optuna and random search get the same space define-by-run: a "
                 "parameter is suggested only inside the `if` that makes it exist. hyperdial's "
                 "tpe uses the group decomposition described in "
                 "crates/search/src/conditional.rs (the counterpart of optuna-tpe-group); "
                 "bayes imputes inactive coordinates for its Gaussian process.")
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--tasks", default="cond-synthetic,cond-branin-rosenbrock",
                    help="comma list (also: cond-svm-cancer, slow: about 1 s per evaluation "
                         "on a loaded machine)")
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                  "quality-conditional.jsonl"))
    ap.add_argument("--report", default=os.path.join(REPO, "bench", "results",
                                                     "quality-conditional.md"))
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    command = ("OMP_NUM_THREADS=1 nice -n 19 python3 bench/quality/conditional.py --seeds %d "
               "--budget %d --jobs %d --tasks %s" % (args.seeds, args.budget, args.jobs,
                                                     args.tasks))
    records = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            records = [json.loads(line) for line in f if line.strip()]
    if not args.report_only:
        done = {(r["optimizer"], r["task"], r["seed"]) for r in records}
        jobs = [(o, t, s, args.budget) for s in range(args.seeds)
                for t in args.tasks.split(",") for o in args.optimizers.split(",")
                if (o, t, s) not in done]
        server = None
        if any(o.startswith("hyperdial") for o, _, _, _ in jobs):
            binary = harness.find_binary()
            if not binary:
                raise SystemExit("no hyperdial binary: cargo build --release -p hyperdial-cli")
            workdir = tempfile.mkdtemp(prefix="hyperdial-conditional-")
            server, url = harness.start_server(binary, workdir)
            os.environ["HYPERDIAL_BENCH_SERVER"] = url
        try:
            with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool, \
                    open(args.out, "a") as out:
                for rec in pool.map(run_job, jobs):
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    records.append(rec)
                    print("%s %s seed %d: best %.4g (%.0f s)" % (
                        rec["optimizer"], rec["task"], rec["seed"], min(rec["values"]),
                        rec["seconds"]), flush=True)
        finally:
            if server is not None:
                server.terminate()
    report(records, args.report, command, args.tasks.split(","))


if __name__ == "__main__":
    main()
