#!/usr/bin/env python3
"""Paired comparison of optimizer labels on the values-list suite, seed range by seed range.

    python3 bench/quality/compare.py --base hyperdial-bayes@before \\
        /tmp/before.jsonl /tmp/variant.jsonl [--labels a,b] [--seeds 0-9,10-19,0-19]

The report (report.py) ranks every label against the peers over one seed range. Telling two
builds of hyperdial apart needs more: the same (task, seed) groups for both, more than one
seed range (10 seeds leave differences of about 0.005 in mean normalized regret within
noise), and the standard error of the *paired* difference. For each budget (20, 50, 100),
group of tasks (all; deterministic ``-list``; noisy ``-list-noisy``) and seed range this prints
each label's mean normalized regret, and for every label but ``--base`` the mean paired
difference to it ± its standard error (negative: better than the base). ``--per-task`` gives
one group per task instead, to read where a variant wins and loses. The regret rule is
the report's: the incumbent is the trial with the best observed value (earliest on ties), its
regret the true value of its configuration normalized by the task's best and median
(lists.lookup). Only (task, seed) groups every compared label finished are counted.

A hyperdial record that holds hyperdial's own estimate of the best configuration after 20, 50
and 100 trials (``estimates``, from ``hyperdial best --estimate``; run.py records it) also
gives a label ``LABEL+estimate``: the same runs, with the estimate as the incumbent instead of
the best observed value, to measure what the best run hyperdial reports is worth under noise.
"""

import argparse
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lists  # noqa: E402
import report  # noqa: E402

BUDGETS = (20, 50, 100)
GROUPS = {
    "all": lambda t: True,
    "det": lambda t: not t.endswith("-noisy"),
    "noisy": lambda t: t.endswith("-noisy"),
}


def load(paths):
    """label -> (task, seed) -> record, from JSONL files (finished runs only; the longest
    record wins when a run appears twice)."""
    out = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                if r.get("status") != "ok" or "true_values" not in r:
                    continue
                key = (r["task"], r["seed"])
                labelled = [(r["optimizer"], r)]
                if r.get("estimates"):
                    labelled.append((r["optimizer"] + "+estimate",
                                     dict(r, incumbents=r["estimates"])))
                for label, rec in labelled:
                    runs = out.setdefault(label, {})
                    if key not in runs or len(rec["values"]) > len(runs[key]["values"]):
                        runs[key] = rec
    return out


def regret(record, budget, best, median):
    """Normalized regret of the incumbent after ``budget`` trials (None: too short)."""
    if len(record["values"]) < budget:
        return None
    vals = [v if (v is not None and math.isfinite(v)) else float("inf")
            for v in record["values"]]
    # A reported incumbent (``LABEL+estimate``) when the record has one for this budget.
    i = record.get("incumbents", {}).get(str(budget))
    if i is None:
        i = report.incumbent({"values": vals}, budget)
    if median <= best:
        return 0.0
    return max(0.0, (record["true_values"][i] - best) / (median - best))


def seed_ranges(text):
    """``"0-9,10-19"`` -> [("0-9", range(0, 10)), ("10-19", range(10, 20))]."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.append((part, range(int(lo), int(hi or lo) + 1)))
    return out


def task_groups(tasks):
    """One group per task (``--per-task``): which tasks a variant wins or loses on."""
    return {t: (lambda name, t=t: name == t) for t in sorted(tasks)}


def compare(runs, labels, base, ranges, known, groups=None):
    """Rows (budget, group, seeds, label, mean regret, paired diff, its se, groups), for the
    task groups ``groups`` (name -> predicate on a task name; default GROUPS)."""
    common = set.intersection(*(set(runs[label]) for label in labels))
    rows = []
    for b in BUDGETS:
        for g, in_group in (groups or GROUPS).items():
            for name, seeds in ranges:
                keys = sorted(k for k in common if in_group(k[0]) and k[1] in seeds)
                if not keys:
                    continue
                reg = {label: [regret(runs[label][k], b, *known[k[0]]) for k in keys]
                       for label in labels}
                if any(r is None for rs in reg.values() for r in rs):
                    continue
                for label in labels:
                    mean = statistics.fmean(reg[label])
                    diff = se = None
                    if label != base:
                        d = [x - y for x, y in zip(reg[label], reg[base])]
                        diff = statistics.fmean(d)
                        se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0
                    rows.append((b, g, name, label, mean, diff, se, len(keys)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="JSONL records of run.py")
    ap.add_argument("--base", required=True, help="the label the others are compared with")
    ap.add_argument("--labels", default=None, help="comma-separated (default: every label)")
    ap.add_argument("--seeds", default="0-9,10-19,0-19", help="seed ranges, e.g. 0-9,10-19")
    ap.add_argument("--per-task", action="store_true",
                    help="one row group per task instead of all/det/noisy")
    args = ap.parse_args(argv)
    runs = load(args.files)
    labels = args.labels.split(",") if args.labels else sorted(runs)
    if args.base not in labels:
        labels.insert(0, args.base)
    missing = [label for label in labels if label not in runs]
    if missing:
        raise SystemExit("no finished records for %s" % ", ".join(missing))
    tasks = {t for label in labels for (t, _) in runs[label]}
    known = {}
    for t in tasks:
        lk = lists.lookup(t)
        known[t] = (lk.best, lk.median)
    groups = task_groups(tasks) if args.per_task else None
    rows = compare(runs, labels, args.base, seed_ranges(args.seeds), known, groups)
    print("| budget | tasks | seeds | label | mean regret | − base (± se) | groups |")
    print("| ---: | --- | --- | --- | ---: | ---: | ---: |")
    for b, g, name, label, mean, diff, se, n in rows:
        d = "" if diff is None else "%+.4f ± %.4f" % (diff, se)
        print("| %d | %s | %s | %s | %.4f | %s | %d |" % (b, g, name, label, mean, d, n))


if __name__ == "__main__":
    main()
