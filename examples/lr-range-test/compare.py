"""Does the LR range test's suggestion train as well as the best of a grid of learning rates?

For each seed: one LR range test (find_lr.py's settings), then the quickstart's network
trained for --epochs epochs at each of five learning rates spanning three decades (1e-3 to 1,
evenly on a log scale) and at the suggested one, from the same initial weights. The
suggestion passes when its final validation loss is at most (1 + --tolerance) times the
grid's best. Prints one line per seed and a summary; exits 1 when a seed fails. Nothing is
sent anywhere (no run is created).

    python3 compare.py                          # seeds 0-5, 15 epochs, tolerance 0.10
    python3 compare.py --seeds 2 --json         # a shorter check, machine-readable
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import find_lr  # noqa: E402

GRID = [10 ** (-3 + 0.75 * i) for i in range(5)]  # 1e-3, 5.6e-3, 3.2e-2, 0.18, 1


def compare(seed, epochs, tolerance, rule="suggested_lr"):
    """One seed's comparison as a dict; ``rule`` is the key of the range test's result to
    train at (``suggested_lr``, or ``steepest_lr`` to measure the other rule)."""
    cfg = dict(find_lr.DEFAULTS, seed=seed)
    result = find_lr.range_test(cfg).result()
    grid = [(lr,) + tuple(find_lr.fit(lr, cfg, epochs)) for lr in GRID]
    best = min(grid, key=lambda g: g[1])
    suggested = result[rule]
    loss, acc = find_lr.fit(suggested, cfg, epochs) if suggested else (float("inf"), 0.0)
    return {
        "seed": seed, "suggested_lr": suggested, "steepest_lr": result["steepest_lr"],
        "divergence_lr": result["divergence_lr"], "val_loss": loss, "val_acc": acc,
        "grid": [{"lr": g[0], "val_loss": g[1], "val_acc": g[2]} for g in grid],
        "best_grid_lr": best[0], "best_grid_val_loss": best[1],
        "best_grid_val_acc": max(g[2] for g in grid),
        "ratio": loss / best[1], "ok": loss <= (1.0 + tolerance) * best[1],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6, help="seeds 0..N-1")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--rule", choices=["suggested_lr", "steepest_lr"], default="suggested_lr",
                        help="which learning rate of the range test to train at")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = [compare(seed, args.epochs, args.tolerance, args.rule) for seed in range(args.seeds)]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print("seed  %9s  val_loss  val_acc | best grid lr  val_loss  val_acc |  ratio" % args.rule[:-3])
        for r in rows:
            print("%4d  %9.3g  %8.4f  %7.3f | %12.3g  %8.4f  %7.3f | %6.3f %s" % (
                r["seed"], r["suggested_lr"] or float("nan"), r["val_loss"], r["val_acc"],
                r["best_grid_lr"], r["best_grid_val_loss"], r["best_grid_val_acc"], r["ratio"],
                "ok" if r["ok"] else "WORSE"))
        print("%d of %d seeds within %.0f %% of the grid's best validation loss" % (
            sum(r["ok"] for r in rows), len(rows), 100 * args.tolerance))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
