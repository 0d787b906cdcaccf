"""Write bench/results/quality.md from the JSONL records of bench/quality/run.py."""

import math
import os
import platform
import statistics
import subprocess
import time

BUDGETS = (20, 50, 100)
HERO, RIVAL = "hyperdial-bayes", "wandb-bayes"


def _versions():
    out = {}
    for mod, name in [("optuna", "optuna"), ("hyperopt", "hyperopt"), ("skopt", "scikit-optimize"),
                      ("sklearn", "scikit-learn"), ("numpy", "numpy"), ("scipy", "scipy"),
                      ("torch", "torch")]:
        try:
            out[name] = __import__(mod).__version__
        except Exception:
            out[name] = "not installed"
    try:
        from importlib.metadata import version
        out["sweeps (W&B)"] = version("sweeps")
    except Exception:
        out["sweeps (W&B)"] = "not installed"
    return out


def _machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores (%s), Python %s, %s" % (
        cpu or platform.processor(), os.cpu_count() or 0, platform.machine(),
        platform.python_version(), platform.platform())


def _git():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=os.path.dirname(os.path.abspath(__file__)),
                              timeout=5).stdout.strip()
    except Exception:
        return "?"


def _ranks(values):
    """Ranks (1 = best, ties averaged) of a list of numbers."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _mean_se(xs):
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    return m, statistics.stdev(xs) / math.sqrt(len(xs))


def analyse(records, optimizers, tasks, known_optima):
    # Keep one record per (optimizer, task, seed): the one with the most trials.
    runs = {}
    for r in records:
        if r["optimizer"] not in optimizers or r["task"] not in tasks:
            continue
        key = (r["optimizer"], r["task"], r["seed"])
        vals = [v for v in r["values"] if v is not None and math.isfinite(v)]
        if len(vals) != len(r["values"]):
            vals = [v if (v is not None and math.isfinite(v)) else float("inf")
                    for v in r["values"]]
        if key not in runs or len(vals) > len(runs[key]["values"]):
            runs[key] = {"values": vals, "suggest_s": r.get("suggest_s") or [],
                         "status": r.get("status")}
    fstar, ref = {}, {}
    for t in tasks:
        allv = [v for (o, tt, s), run in runs.items() if tt == t for v in run["values"]
                if math.isfinite(v)]
        if not allv:
            continue
        fstar[t] = known_optima.get(t) if known_optima.get(t) is not None else min(allv)
        rand = [v for (o, tt, s), run in runs.items() if tt == t and o == "random"
                for v in run["values"] if math.isfinite(v)]
        ref[t] = statistics.median(rand or allv)

    def regret(t, vals, b):
        if len(vals) < b or t not in fstar:
            return None
        scale = ref[t] - fstar[t]
        best = min(vals[:b])
        if scale <= 0:
            return 0.0
        return max(0.0, (best - fstar[t]) / scale)

    table = {}  # (task, opt, budget) -> list of regrets
    for (o, t, s), run in runs.items():
        for b in BUDGETS:
            r = regret(t, run["values"], b)
            if r is not None:
                table.setdefault((t, o, b), []).append(r)
    # Ranks over (task, seed) groups where every optimizer has the budget.
    ranks = {}  # (opt, budget) -> list
    groups = {}
    seeds = sorted({s for (_, _, s) in runs})
    for b in BUDGETS:
        n = 0
        for t in tasks:
            for s in seeds:
                vals = []
                for o in optimizers:
                    run = runs.get((o, t, s))
                    if run is None or len(run["values"]) < b:
                        break
                    vals.append(min(run["values"][:b]))
                else:
                    n += 1
                    for o, rk in zip(optimizers, _ranks(vals)):
                        ranks.setdefault((o, b), []).append(rk)
        groups[b] = n
    timing = {}
    for o in optimizers:
        xs = [x for (oo, t, s), run in runs.items() if oo == o for x in run["suggest_s"]]
        late = [x for (oo, t, s), run in runs.items() if oo == o
                for x in run["suggest_s"][80:100]]
        timing[o] = (statistics.median(xs) if xs else None,
                     sum(xs) / len(xs) if xs else None,
                     sum(late) / len(late) if late else None)
    return runs, fstar, ref, table, ranks, groups, timing, seeds


def write(records, path, command, note, optimizers, tasks):
    import run as bench
    known = {t: bench.TASKS[t]["opt"] for t in tasks}
    runs, fstar, ref, table, ranks, groups, timing, seeds = analyse(
        records, optimizers, tasks, known)
    failures = [r for r in records if r.get("status") != "ok"]
    L = []
    L.append("# Search quality: hyperdial against Optuna, hyperopt, scikit-optimize, W&B")
    L.append("")
    L.append("Generated by `bench/quality/run.py` (report: `bench/quality/report.py`) on %s, "
             "hyperdial commit `%s`." % (time.strftime("%Y-%m-%d %H:%M"), _git()))
    L.append("")
    if note:
        L.append("**What was run:** " + note)
        L.append("")
    L.append("Command: `%s`" % command)
    L.append("")
    L.append("Machine: %s. The machine is shared with other work, so wall times are noisy." %
             _machine())
    L.append("")
    L.append("Peers: " + ", ".join("%s %s" % kv for kv in _versions().items()) + ".")
    L.append("")
    n_jobs = len(runs)
    L.append("Records: %d (optimizer, task, seed) runs over seeds %s; %d job(s) ended with "
             "a timeout or an error." % (n_jobs, _seed_text(seeds), len(failures)))
    L.append("")
    L.append("**Normalized regret** at budget b = (best of the first b trials − f*) / "
             "(median value of random search on the task − f*): 0 is the optimum, 1 a typical "
             "random configuration. f* is the known optimum of the synthetic functions and the "
             "best value any optimizer found on the tuning tasks (all minimize 1 − CV accuracy, "
             "or 1 − CV R² for elastic net). Mean ± standard error over seeds; n = seeds.")
    L.append("")

    # Mean rank.
    L.append("## Mean rank (1 = best)")
    L.append("")
    L.append("Per (task, seed), the optimizers are ranked by the best value within the budget "
             "(ties share a rank), then the ranks are averaged; only groups where every "
             "optimizer reached the budget count.")
    L.append("")
    L.append("| optimizer | " + " | ".join("b=%d" % b for b in BUDGETS) + " |")
    L.append("| --- |" + " ---: |" * len(BUDGETS))
    for o in sorted(optimizers, key=lambda o: _avg(ranks.get((o, 100))) or
                    _avg(ranks.get((o, 50))) or _avg(ranks.get((o, 20))) or 99):
        cells = []
        for b in BUDGETS:
            xs = ranks.get((o, b))
            cells.append("%.2f" % (sum(xs) / len(xs)) if xs else "–")
        L.append("| %s | %s |" % (o, " | ".join(cells)))
    L.append("| *groups* | " + " | ".join(str(groups[b]) for b in BUDGETS) + " |")
    L.append("")

    # Verdict.
    L.append("## Targets")
    L.append("")
    for b in (50, 100):
        means = {o: _avg(ranks.get((o, b))) for o in optimizers}
        means = {o: m for o, m in means.items() if m is not None}
        if not means or HERO not in means:
            L.append("- Best mean rank at b=%d: not measured." % b)
            continue
        best = min(means, key=means.get)
        L.append("- Best mean rank at b=%d: **%s** (%.2f); %s has %.2f → target %s." % (
            b, best, means[best], HERO, means[HERO], "met" if best == HERO else "**not met**"))
    if RIVAL in optimizers:
        for b in (50, 100):
            wins, total, lost, tied = 0, 0, [], []
            for t in tasks:
                a, w = _avg(table.get((t, HERO, b))), _avg(table.get((t, RIVAL, b)))
                if a is None or w is None:
                    continue
                total += 1
                if abs(a - w) <= 1e-9:
                    tied.append(t)
                elif a < w:
                    wins += 1
                else:
                    lost.append(t)
            if total:
                L.append("- %s beats %s (lower mean regret) at b=%d on %d of %d tasks "
                         "(%.0f%%; target 80%%)%s%s." % (
                             HERO, RIVAL, b, wins, total, 100.0 * wins / total,
                             "; ties on " + ", ".join(tied) if tied else "",
                             "; loses on " + ", ".join(lost) if lost else ""))
    L.append("")

    # Regret tables.
    L.append("## Normalized regret per task")
    L.append("")
    for b in BUDGETS:
        L.append("### Budget %d" % b)
        L.append("")
        L.append("| task | " + " | ".join(optimizers) + " |")
        L.append("| --- |" + " ---: |" * len(optimizers))
        for t in tasks:
            cells = []
            best_mean = min([m for m in (_avg(table.get((t, o, b))) for o in optimizers)
                             if m is not None] or [None]) if any(
                table.get((t, o, b)) for o in optimizers) else None
            for o in optimizers:
                m, se = _mean_se(table.get((t, o, b), []))
                if m is None:
                    cells.append("–")
                    continue
                text = "%.3g ± %.2g" % (m, se) if se is not None else "%.3g" % m
                if best_mean is not None and m == best_mean:
                    text = "**" + text + "**"
                cells.append(text + " (%d)" % len(table[(t, o, b)]))
            L.append("| %s | %s |" % (t, " | ".join(cells)))
        L.append("")
    L.append("Reference values: " + "; ".join(
        "%s f*=%.6g ref=%.6g" % (t, fstar[t], ref[t]) for t in tasks if t in fstar) + ".")
    L.append("")

    # Timing.
    L.append("## Wall time per suggestion")
    L.append("")
    L.append("Time from the end of one evaluation to the start of the next (the optimizer's "
             "own work; for hyperdial the HTTP round trips of tell and ask to a local server "
             "and the server's claim, which writes to SQLite).")
    L.append("")
    L.append("| optimizer | median | mean | mean over trials 81–100 |")
    L.append("| --- | ---: | ---: | ---: |")
    for o in optimizers:
        med, mean, late = timing[o]
        L.append("| %s | %s | %s | %s |" % (o, _ms(med), _ms(mean), _ms(late)))
    L.append("")
    L.append("Settings: Optuna `TPESampler(seed)` and `GPSampler(seed)` with their defaults; "
             "hyperopt `fmin(algo=tpe.suggest)`; scikit-optimize's ask/tell `Optimizer` set up "
             "as `gp_minimize` does (GP with Matérn kernel and Gaussian noise, 10 random "
             "initial points, `gp_hedge`, `lbfgs`); W&B `sweeps.next_run` with `method: bayes` "
             "offline (numpy's global seed set per run); hyperdial `bayes` and `tpe` through "
             "the Python ask/tell client (`hyperdial.Sweep`) against one local "
             "`hyperdial server`, sweep seed = seed + 1; random: uniform (log-uniform for log "
             "parameters) draws.")
    if failures:
        L.append("")
        L.append("## Jobs that did not finish")
        L.append("")
        for r in failures[:40]:
            last = (r.get("error") or "").strip().splitlines()
            L.append("- %s / %s / seed %d: %s after %d trials%s" % (
                r["optimizer"], r["task"], r["seed"], r["status"], len(r["values"]),
                (": `" + last[-1][:160] + "`") if last else ""))
    L.append("")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(L))


def _avg(xs):
    return sum(xs) / len(xs) if xs else None


def _ms(x):
    if x is None:
        return "–"
    return "%.1f ms" % (x * 1000) if x < 10 else "%.1f s" % x


def _seed_text(seeds):
    if not seeds:
        return "none"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return "%d–%d" % (seeds[0], seeds[-1])
    return ", ".join(map(str, seeds))
