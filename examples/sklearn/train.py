"""Tune a gradient-boosting classifier on scikit-learn's bundled digits data set.

Three-fold cross-validation, with a learning curve: the three fold models grow together,
`--stage` trees at a time, and after each stage the script logs the mean validation accuracy
and log loss over the folds (`val_acc`, `val_loss`, with `n_estimators`). The sweep's metric
is `val_acc`; the final mean accuracy is also kept in the run's summary.

Hyperparameters: the defaults below, overridden by `--name=value` flags (what the sweep's
default command passes), overridden by the run's config under a hyperdial agent.

    pip install scikit-learn
    python3 train.py                          # defaults; offline without a server
    python3 train.py --learning_rate=0.05 --max_depth=4
"""

import argparse
import math
import os
import sys
import time

try:
    import hyperdial
except ImportError:  # running from a checkout: use the client in <repo>/python
    sys.path.insert(
        0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "python")
    )
    import hyperdial

try:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold
except ImportError:
    sys.exit("this example needs scikit-learn: pip install scikit-learn")

DEFAULTS = {
    "learning_rate": 0.1,
    "n_estimators": 100,
    "max_depth": 3,
    "subsample": 1.0,
    "max_features": "sqrt",
    "stage": 10,
    "seed": 0,
}


def parse_args(argv=None):
    """DEFAULTS overridden by --name=value flags; unknown flags are ignored with a note."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in DEFAULTS.items():
        parser.add_argument("--" + name, type=type(default), default=default)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print("ignoring unknown arguments: " + " ".join(unknown), file=sys.stderr)
    return args


def main(argv=None):
    args = parse_args(argv)
    with hyperdial.init(config=vars(args), project="sklearn-digits") as run:
        cfg = run.config
        X, y = load_digits(return_X_y=True)
        folds = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=cfg.seed).split(X, y))
        models = [
            GradientBoostingClassifier(
                learning_rate=float(cfg.learning_rate),
                max_depth=int(cfg.max_depth),
                subsample=float(cfg.subsample),
                max_features=cfg.max_features,
                random_state=int(cfg.seed),
                warm_start=True,  # each fit() adds trees to the ones already grown
            )
            for _ in folds
        ]
        total, stage = int(cfg.n_estimators), max(1, int(cfg.stage))
        start = time.monotonic()
        accs = []
        for n in list(range(stage, total, stage)) + [total]:
            accs, losses = [], []
            for model, (train, val) in zip(models, folds):
                model.set_params(n_estimators=n)
                model.fit(X[train], y[train])
                proba = model.predict_proba(X[val])
                accs.append(float(np.mean(model.classes_[proba.argmax(axis=1)] == y[val])))
                losses.append(log_loss(y[val], proba, labels=model.classes_))
            val_acc, val_loss = float(np.mean(accs)), float(np.mean(losses))
            run.log({"n_estimators": n, "val_acc": val_acc, "val_loss": val_loss,
                     "val_acc_std": float(np.std(accs))})
            print("trees %4d  val_acc %.4f  val_loss %.4f" % (n, val_acc, val_loss), flush=True)
            if not math.isfinite(val_loss):
                print("training diverged", file=sys.stderr)
                run.finish(exit_code=1)
                return 1
            if run.stop_requested:  # the sweep's early termination asked us to stop
                print("stopped early by the sweep", file=sys.stderr)
                break
        run.summary["val_acc"] = val_acc
        run.summary["fold_acc"] = accs
        run.summary["fit_seconds"] = round(time.monotonic() - start, 3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
