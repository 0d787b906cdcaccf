"""Write bench/results/quality.md (or quality-lists.md) from the JSONL records of run.py.

Regret at budget b is that of the incumbent: the trial with the best observed value among the
first b (the earliest on ties), scored by its true value. On deterministic tasks this is the
best value so far; on noisy tasks (lists.py) the true value is the configuration's noise-free
mean. Labels with a version (``hyperdial-bayes@before``) are ranked against the peers
separately for each version, so two builds of hyperdial can be compared side by side.
"""

import math
import os
import platform
import statistics
import subprocess
import time

BUDGETS = (20, 50, 100)
HERO, RIVAL = "hyperdial-bayes", "wandb-bayes"
TPE, TPE_PEER = "hyperdial-tpe", "optuna-tpe"


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


def _base(label):
    return label.split("@", 1)[0]


def _version(label):
    return label.partition("@")[2]


def _version_name(v):
    return "@" + v if v else "current"


def fields(optimizers):
    """Version -> the labels ranked together: the peers and that version's hyperdial labels.
    With no version in the labels there is one field, every label."""
    peers = [o for o in optimizers if not _base(o).startswith("hyperdial")]
    versions = sorted({_version(o) for o in optimizers if _base(o).startswith("hyperdial")})
    if not versions:
        return {"": list(optimizers)}
    return {v: peers + [o for o in optimizers if _base(o).startswith("hyperdial")
                        and _version(o) == v] for v in versions}


def incumbent(run, b):
    """Index of the incumbent after b trials: best observed value, earliest on ties."""
    vals = run["values"][:b]
    best = min(vals)
    return vals.index(best)


def analyse(records, optimizers, tasks, known):
    """``known``: task -> (f*, ref) where both are known (None entries: from the records)."""
    runs = {}
    for r in records:
        if r["optimizer"] not in optimizers or r["task"] not in tasks:
            continue
        key = (r["optimizer"], r["task"], r["seed"])
        vals = [v if (v is not None and math.isfinite(v)) else float("inf")
                for v in r["values"]]
        trues = r.get("true_values")
        trues = [v if (v is not None and math.isfinite(v)) else float("inf")
                 for v in trues] if trues else list(vals)
        if key not in runs or len(vals) > len(runs[key]["values"]):
            runs[key] = {"values": vals, "true": trues, "configs": r.get("configs"),
                         "suggest_s": r.get("suggest_s") or [], "status": r.get("status")}
    fstar, ref = {}, {}
    for t in tasks:
        kf, kr = known.get(t, (None, None))
        allv = [v for (o, tt, s), run in runs.items() if tt == t for v in run["true"]
                if math.isfinite(v)]
        if kf is None and not allv:
            continue
        fstar[t] = kf if kf is not None else min(allv)
        if kr is not None:
            ref[t] = kr
        else:
            rand = [v for (o, tt, s), run in runs.items() if tt == t and _base(o) == "random"
                    for v in run["true"] if math.isfinite(v)]
            ref[t] = statistics.median(rand or allv)

    def regret(t, run, b):
        if len(run["values"]) < b or t not in fstar:
            return None
        scale = ref[t] - fstar[t]
        if scale <= 0:
            return 0.0
        return max(0.0, (run["true"][incumbent(run, b)] - fstar[t]) / scale)

    table = {}  # (task, label, budget) -> list of regrets
    for (o, t, s), run in runs.items():
        for b in BUDGETS:
            r = regret(t, run, b)
            if r is not None:
                table.setdefault((t, o, b), []).append(r)
    seeds = sorted({s for (_, _, s) in runs})
    timing = {}
    for o in optimizers:
        xs = [x for (oo, t, s), run in runs.items() if oo == o for x in run["suggest_s"]]
        late = [x for (oo, t, s), run in runs.items() if oo == o
                for x in run["suggest_s"][80:100]]
        timing[o] = (statistics.median(xs) if xs else None,
                     sum(xs) / len(xs) if xs else None,
                     sum(late) / len(late) if late else None)
    return {"runs": runs, "fstar": fstar, "ref": ref, "table": table, "seeds": seeds,
            "timing": timing, "regret": regret}


def summary(a, field, tasks):
    """(label, budget) -> (mean regret, mean rank, groups) over the (task, seed) groups of
    ``tasks`` where every label of ``field`` reached the budget; ranks within the field by the
    incumbent's true value (ties share a rank)."""
    out = {}
    for b in BUDGETS:
        regrets, ranks, n = {}, {}, 0
        for t in tasks:
            for s in a["seeds"]:
                rs = []
                for o in field:
                    run = a["runs"].get((o, t, s))
                    r = a["regret"](t, run, b) if run is not None else None
                    if r is None:
                        break
                    rs.append(r)
                else:
                    n += 1
                    for o, r, rk in zip(field, rs, _ranks(rs)):
                        regrets.setdefault(o, []).append(r)
                        ranks.setdefault(o, []).append(rk)
        for o in field:
            out[(o, b)] = (_avg(regrets.get(o)), _avg(ranks.get(o)), n)
    return out


def _cell(stat):
    reg, rank, _ = stat
    if reg is None:
        return "–"
    return "%.3f (%.2f)" % (reg, rank)


def _summary_table(L, a, flds, tasks):
    sums = {v: summary(a, f, tasks) for v, f in flds.items()}
    versions = list(flds)
    rows = []
    for f in flds.values():
        for o in f:
            name = _base(o) if len(versions) > 1 else o
            if name not in rows:
                rows.append(name)
    multi = len(versions) > 1
    cols = [(b, v) for b in BUDGETS for v in versions]
    L.append("| optimizer | " + " | ".join(
        ("@%d %s" % (b, _version_name(v))) if multi else "@%d" % b for b, v in cols) + " |")
    L.append("| --- |" + " ---: |" * len(cols))

    def label(name, v):
        if name.startswith("hyperdial") and multi and v:
            return name + "@" + v
        return name

    def sort_key(name):
        for b in (100, 50, 20):
            for v in reversed(versions):
                st = sums[v].get((label(name, v), b))
                if st and st[1] is not None:
                    return st[1]
        return 99

    for name in sorted(rows, key=sort_key):
        cells = []
        for b, v in cols:
            st = sums[v].get((label(name, v), b))
            cells.append(_cell(st) if st else "–")
        L.append("| %s | %s |" % (name, " | ".join(cells)))
    L.append("| *(task, seed) groups* | " + " | ".join(
        str(sums[v][(flds[v][0], b)][2]) if flds[v] else "0" for b, v in cols) + " |")
    L.append("")
    return sums


def _lists_targets(L, sums, flds, tasks_all):
    for v, field in flds.items():
        s = sums[v]
        hero = [o for o in field if _base(o) == HERO]
        tpe = [o for o in field if _base(o) == TPE]
        peers = [o for o in field if not _base(o).startswith("hyperdial")]
        name = _version_name(v)
        for b in (50, 100):
            if not hero or s.get((hero[0], b), (None,))[0] is None:
                L.append("- %s, b=%d: %s not measured." % (name, b, HERO))
                continue
            h = hero[0]
            ranked = {o: s[(o, b)][1] for o in field if s[(o, b)][1] is not None}
            best = min(ranked, key=ranked.get)
            pr = {o: s[(o, b)][0] for o in peers if s[(o, b)][0] is not None}
            bp = min(pr, key=pr.get) if pr else None
            rank_ok = best == h
            reg_ok = bp is not None and s[(h, b)][0] <= 0.8 * pr[bp]
            L.append("- %s, b=%d: best mean rank **%s** (%.2f; %s %.2f) → %s; %s mean regret "
                     "%.3f vs 0.8 × best peer (%s %.3f) = %.3f → %s." % (
                         name, b, best, ranked[best], h, ranked[h],
                         "met" if rank_ok else "**not met**", h, s[(h, b)][0], bp,
                         pr.get(bp, float("nan")), 0.8 * pr.get(bp, float("nan")),
                         "met" if reg_ok else "**not met**"))
            if tpe and TPE_PEER in field and s[(tpe[0], b)][0] is not None:
                t, p = s[(tpe[0], b)], s[(TPE_PEER, b)]
                verdict = ("level or better" if t[0] <= p[0] and t[1] <= p[1] else
                           "**behind**" if t[0] > p[0] and t[1] > p[1] else
                           "**mixed**: %s" % ("lower regret, worse rank" if t[0] <= p[0]
                                               else "better rank, higher regret"))
                L.append("  %s: mean regret %.3f (mean rank %.2f) vs %s %.3f (%.2f) → %s." % (
                    tpe[0], t[0], t[1], TPE_PEER, p[0], p[1], verdict))


def write(records, path, command, note, optimizers, tasks):
    import run as bench
    import lists
    known = {}
    lookups = {}
    for t in tasks:
        if bench.TASKS[t].get("lookup"):
            lk = lists.lookup(t)
            lookups[t] = lk
            known[t] = (lk.best, lk.median)
        else:
            known[t] = (bench.TASKS[t]["opt"], None)
    a = analyse(records, optimizers, tasks, known)
    runs, fstar, ref, table, seeds = a["runs"], a["fstar"], a["ref"], a["table"], a["seeds"]
    timing = a["timing"]
    failures = [r for r in records if r.get("status") != "ok" and r["optimizer"] in optimizers
                and r["task"] in tasks]
    flds = fields(optimizers)
    list_suite = bool(lookups)
    L = []
    if list_suite:
        L.append("# Search quality on values lists and noise: hyperdial against Optuna, "
                 "hyperopt, W&B")
    else:
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
    binaries = sorted({(r["optimizer"], r["binary"]) for r in records
                       if r.get("binary") and r["optimizer"] in optimizers})
    if binaries:
        L.append("")
        L.append("hyperdial builds: " + "; ".join("`%s`: %s" % ob for ob in binaries) + ".")
    L.append("")
    L.append("Records: %d (optimizer, task, seed) runs over seeds %s; %d job(s) ended with "
             "a timeout or an error." % (len(runs), _seed_text(seeds), len(failures)))
    L.append("")
    if list_suite:
        L.append("**Tasks.** Every parameter is a W&B `values` list (geometric lists for "
                 "learning rates and regularization, powers of two for sizes, small integer "
                 "lists, one categorical); each task's full grid is a lookup table "
                 "(`bench/quality/lists.py`, `bench/quality/tables/`). `-list` tasks return a "
                 "configuration's true value (its 5-fold CV error, or the synthetic function); "
                 "`-list-noisy` tasks of a table return one fold's error less that fold's mean "
                 "offset over the grid (a realistic noise: the configuration's own spread "
                 "between folds and training seeds), with the fold drawn per trial from a "
                 "generator seeded by task and seed, the same draws for every optimizer. "
                 "`hartmann6-list-noisy`, `mlp9-list-noisy` (9 parameters, 62,208 "
                 "configurations) and `cell6-list-noisy` (6 string-valued edges, 15,625 "
                 "configurations) are computed grids shaped like network-training sweeps, "
                 "with Gaussian noise whose size grows with the loss (heteroscedastic), drawn "
                 "the same way.")
        L.append("")
        L.append("**Normalized regret** at budget b: the incumbent is the trial with the best "
                 "*observed* value among the first b (the earliest on ties), the same rule for "
                 "every optimizer; its regret is (true value of its configuration − f*) / "
                 "(median − f*), with f* the best and median the median true value of the "
                 "task's whole grid: 0 is the table's best, 1 its median. Each optimizer "
                 "sees a list in its users' form: `values:` in the sweep config (hyperdial, W&B "
                 "`sweeps`), `suggest_categorical` (Optuna: it has no ordered-list "
                 "distribution), `hp.choice` (hyperopt), a uniform pick (random).")
    else:
        L.append("**Normalized regret** at budget b = (best of the first b trials − f*) / "
                 "(median value of random search on the task − f*): 0 is the optimum, 1 a "
                 "typical random configuration. f* is the known optimum of the synthetic "
                 "functions and the best value any optimizer found on the tuning tasks (all "
                 "minimize 1 − CV accuracy, or 1 − CV R² for elastic net). Mean ± standard "
                 "error over seeds; n = seeds.")
    L.append("")

    L.append("## Mean normalized regret (mean rank)")
    L.append("")
    L.append("Per (task, seed), the optimizers are ranked by the incumbent's true value at the "
             "budget (ties share a rank), then regrets and ranks are averaged over the "
             "(task, seed) groups where every optimizer reached the budget.%s" % (
                 " Each version of hyperdial is ranked against the peers separately "
                 "(`current` is the build under test, `@before` the earlier one), so the peers' "
                 "regrets are the same in both columns and their ranks differ slightly."
                 if len(flds) > 1 else ""))
    L.append("")
    groups = [("All tasks (%d)" % len(tasks), tasks)]
    if list_suite:
        det = [t for t in tasks if not bench.TASKS[t].get("noisy")]
        noisy = [t for t in tasks if bench.TASKS[t].get("noisy")]
        if det and noisy:
            groups += [("Deterministic `-list` tasks (%d)" % len(det), det),
                       ("Noisy `-list-noisy` tasks (%d)" % len(noisy), noisy)]
            computed = [t for t in noisy if lookups[t].replicates is None]
            if computed and len(computed) < len(noisy):
                groups += [("Noisy tasks from tables (%d)" % (len(noisy) - len(computed)),
                            [t for t in noisy if t not in computed]),
                           ("Noisy computed grids (%d)" % len(computed), computed)]
    sums_all = None
    for title, ts in groups:
        if len(groups) > 1:
            L.append("### " + title)
            L.append("")
        sums = _summary_table(L, a, flds, ts)
        if sums_all is None:
            sums_all = sums

    L.append("## Targets")
    L.append("")
    if list_suite:
        L.append("The issue's targets, stated for a held-out suite outside the repository and "
                 "checked here on this one: `bayes` the best mean rank at 50 and 100 trials "
                 "with mean regret at most 0.8× the best peer's; `tpe` at least level with "
                 "Optuna's TPE (here: mean regret and mean rank both no worse). Over all tasks "
                 "of this suite:")
        L.append("")
        _lists_targets(L, sums_all, flds, tasks)
    else:
        for v, field in flds.items():
            for b in (50, 100):
                st = sums_all[v]
                ranked = {o: st[(o, b)][1] for o in field if st[(o, b)][1] is not None}
                hero = [o for o in field if _base(o) == HERO]
                if not ranked or not hero or hero[0] not in ranked:
                    L.append("- Best mean rank at b=%d: not measured." % b)
                    continue
                best = min(ranked, key=ranked.get)
                L.append("- Best mean rank at b=%d: **%s** (%.2f); %s has %.2f → target %s."
                         % (b, best, ranked[best], hero[0], ranked[hero[0]],
                            "met" if best == hero[0] else "**not met**"))
        hero_labels = [o for o in optimizers if _base(o) == HERO]
        if RIVAL in optimizers:
            for hero in hero_labels:
                for b in (50, 100):
                    wins, total, lost, tied = 0, 0, [], []
                    for t in tasks:
                        x, w = _avg(table.get((t, hero, b))), _avg(table.get((t, RIVAL, b)))
                        if x is None or w is None:
                            continue
                        total += 1
                        if abs(x - w) <= 1e-9:
                            tied.append(t)
                        elif x < w:
                            wins += 1
                        else:
                            lost.append(t)
                    if total:
                        L.append("- %s beats %s (lower mean regret) at b=%d on %d of %d tasks "
                                 "(%.0f%%; target 80%%)%s%s." % (
                                     hero, RIVAL, b, wins, total, 100.0 * wins / total,
                                     "; ties on " + ", ".join(tied) if tied else "",
                                     "; loses on " + ", ".join(lost) if lost else ""))
    L.append("")

    L.append("## Normalized regret per task")
    L.append("")
    for b in BUDGETS:
        L.append("### Budget %d" % b)
        L.append("")
        L.append("| task | " + " | ".join(optimizers) + " |")
        L.append("| --- |" + " ---: |" * len(optimizers))
        for t in tasks:
            cells = []
            means = [m for m in (_avg(table.get((t, o, b))) for o in optimizers)
                     if m is not None]
            best_mean = min(means) if means else None
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
    if list_suite:
        parts = []
        for t in tasks:
            if t not in fstar:
                continue
            lk = lookups[t]
            text = "%s: %d configurations, f*=%.6g, median=%.6g" % (
                t, len(lk.configs), fstar[t], ref[t])
            if lk.noisy and lk.noise_summary():
                sd_all, sd_top = lk.noise_summary()
                text += ", noise sd %.3g (best 10%%: %.3g) = %.2f (%.2f) of median − f*" % (
                    sd_all, sd_top, sd_all / (ref[t] - fstar[t]), sd_top / (ref[t] - fstar[t]))
            parts.append(text)
        L.append("Tasks: " + "; ".join(parts) + ".")
    else:
        L.append("Reference values: " + "; ".join(
            "%s f*=%.6g ref=%.6g" % (t, fstar[t], ref[t]) for t in tasks if t in fstar) + ".")
    L.append("")

    finite = [t for t in tasks if t in lookups]
    if finite:
        L.append("## Distinct configurations per run")
        L.append("")
        L.append("Mean number of distinct configurations among a run's first 100 trials (every "
                 "grid here has more than 100); a repeat spends a trial on a configuration "
                 "already evaluated (on a noisy task it does give a second, different draw).")
        L.append("")
        L.append("| task (configurations) | " + " | ".join(optimizers) + " |")
        L.append("| --- |" + " ---: |" * len(optimizers))
        for t in finite:
            cells = []
            for o in optimizers:
                xs = [len(set(run["configs"][:100])) for (oo, tt, s), run in runs.items()
                      if oo == o and tt == t and run.get("configs")
                      and len(run["configs"]) >= 100]
                cells.append("%.1f" % _avg(xs) if xs else "–")
            L.append("| %s (%d) | %s |" % (t, len(lookups[t].configs), " | ".join(cells)))
        for b in BUDGETS:
            cells = []
            for o in optimizers:
                xs = [b - len(set(run["configs"][:b])) for (oo, tt, s), run in runs.items()
                      if oo == o and tt in lookups and run.get("configs")
                      and len(run["configs"]) >= b]
                cells.append("%.1f" % _avg(xs) if xs else "–")
            L.append("| *repeated trials in the first %d, mean over tasks* | %s |" % (
                b, " | ".join(cells)))
        L.append("")

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
