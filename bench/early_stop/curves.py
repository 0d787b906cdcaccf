"""Learning curves from real training, for the early-termination benchmark.

For each task and seed, sample configurations at random (seeded) and train each for the full
number of epochs, recording the validation metric after every epoch. The Rust replay
(`cargo run --release -p hyperdial-bench --bin early_stop`) then runs the sweep again with
and without each stopping rule on these exact curves.

Tasks: an MLP (scikit-learn, partial_fit epoch by epoch) on the digits dataset, a linear model
trained by SGD on breast cancer, and the quickstart's pure-Python MLP on two moons.

Usage: OMP_NUM_THREADS=1 python3 bench/early_stop/curves.py [--seeds 10] [--configs 24] [--out FILE]
"""

import argparse
import json
import math
import os
import random
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir))
EPOCHS = 27


def log_uniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def mlp_digits(rng, seed):
    """val_loss (log loss) of an MLP on digits, per epoch."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xva = scaler.transform(Xtr), scaler.transform(Xva)
    config = {
        "hidden": rng.choice([8, 16, 32, 64]),
        "lr": log_uniform(rng, 1e-4, 3e-1),
        "alpha": log_uniform(rng, 1e-6, 1e-1),
        "batch": rng.choice([16, 64, 256]),
    }
    model = MLPClassifier(hidden_layer_sizes=(config["hidden"],), learning_rate_init=config["lr"],
                          alpha=config["alpha"], batch_size=config["batch"], random_state=seed)
    classes = np.unique(y)
    curve = []
    for _ in range(EPOCHS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(Xtr, ytr, classes=classes)
        p = np.clip(model.predict_proba(Xva), 1e-12, 1)
        loss = log_loss(yva, p, labels=classes)
        curve.append(loss if math.isfinite(loss) else None)
    return config, curve


def sgd_cancer(rng, seed):
    """val_error (1 - accuracy) of an SGD-trained linear model on breast cancer, per epoch."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xva = scaler.transform(Xtr), scaler.transform(Xva)
    config = {
        "loss": rng.choice(["hinge", "log_loss", "modified_huber"]),
        "alpha": log_uniform(rng, 1e-6, 1.0),
        "eta0": log_uniform(rng, 1e-5, 1e-1),
        "schedule": rng.choice(["constant", "invscaling", "adaptive"]),
    }
    model = SGDClassifier(loss=config["loss"], alpha=config["alpha"], eta0=config["eta0"],
                          learning_rate=config["schedule"], random_state=seed)
    classes = np.unique(y)
    curve = []
    for _ in range(EPOCHS):
        model.partial_fit(Xtr, ytr, classes=classes)
        curve.append(1.0 - float(model.score(Xva, yva)))
    return config, curve


def quickstart_moons(rng, seed):
    """val_loss of the quickstart's pure-Python MLP on two moons, per epoch."""
    sys.path.insert(0, os.path.join(REPO, "examples", "quickstart"))
    import train  # noqa: E402 (the example's model and data)

    config = {
        "lr": log_uniform(rng, 1e-3, 0.5),
        "momentum": rng.uniform(0.0, 0.95),
        "hidden": rng.choice([4, 8, 16, 32]),
        "activation": rng.choice(["tanh", "relu"]),
        "l2": log_uniform(rng, 1e-6, 1e-2),
    }
    data_rng = random.Random(1234)
    train_set = train.make_moons(400, 0.2, data_rng)
    val_set = train.make_moons(200, 0.2, data_rng)
    model_rng = random.Random(seed)
    model = train.MLP(config["hidden"], config["activation"], model_rng)
    curve = []
    for _ in range(EPOCHS):
        model_rng.shuffle(train_set)
        for x, label in train_set:
            model.step(x, label, config["lr"], config["momentum"], config["l2"])
        loss, _ = model.evaluate(val_set)
        curve.append(loss if math.isfinite(loss) else None)
    return config, curve


TASKS = {"mlp-digits": mlp_digits, "sgd-breast-cancer": sgd_cancer, "quickstart-moons": quickstart_moons}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--configs", type=int, default=24)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--out", default=os.path.join(REPO, "target", "early-stop-curves.json"))
    args = parser.parse_args()
    out = []
    for task in args.tasks.split(","):
        started = time.time()
        for seed in range(args.seeds):
            rng = random.Random(1000 * seed + 7)
            curves, configs = [], []
            for i in range(args.configs):
                config, curve = TASKS[task](rng, seed * 100 + i)
                configs.append(config)
                curves.append(curve)
            out.append({"task": task, "seed": seed, "goal": "minimize", "epochs": EPOCHS,
                        "configs": configs, "curves": curves})
        print("%s: %d seeds x %d configs in %.0fs" % (task, args.seeds, args.configs,
                                                       time.time() - started), file=sys.stderr)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(args.out)


if __name__ == "__main__":
    main()
