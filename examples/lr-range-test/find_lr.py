"""An LR range test of the quickstart's network on its two-moons data, standard library only.

The network, the data and the training step are the quickstart's (imported from
../quickstart/train.py). One range test raises the learning rate exponentially from
--min_lr to --max_lr over --steps steps of --batch examples each (SGD with momentum, one
update per example as the quickstart trains), logging `lr`, `loss` and `loss_smoothed`
through `hyperdial.lr_range_test`; it stops early when the smoothed loss diverges and stores
its outcome in the run's summary under `lr_range_test`.

    python3 find_lr.py                         # offline without a server
    hyperdial run -- python3 find_lr.py        # then: hyperdial lr-find RUN
"""

import argparse
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "quickstart"))
import train as quickstart  # noqa: E402  (the quickstart's network and data)

hyperdial = quickstart.hyperdial  # the client the quickstart found (installed, or the checkout's)

DEFAULTS = {
    "min_lr": 1e-4,
    "max_lr": 10.0,
    "steps": 200,
    "batch": 20,
    "momentum": 0.9,
    "hidden": 16,
    "activation": "tanh",
    "l2": 1e-4,
    "seed": 0,
}


def datasets():
    """The quickstart's training and validation sets (the same for every run)."""
    data_rng = random.Random(1234)
    train = quickstart.make_moons(400, 0.2, data_rng)
    val = quickstart.make_moons(200, 0.2, data_rng)
    return train, val


def example_loss(model, x, label):
    """Cross-entropy of one example under the model as it is now."""
    _, p = model.forward(x)
    p = min(max(p, 1e-12), 1 - 1e-12)
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def range_test(cfg, run=None):
    """Run one LR range test with the settings in ``cfg`` (the keys of DEFAULTS); return the
    finished :class:`hyperdial.LRRangeTest`. The loss of a step is the mean training loss of
    its ``batch`` examples, each taken before the update it causes."""
    train, _ = datasets()
    rng = random.Random(int(cfg["seed"]))
    model = quickstart.MLP(int(cfg["hidden"]), cfg["activation"], rng)
    order, pos = list(train), len(train)
    test = hyperdial.lr_range_test(float(cfg["min_lr"]), float(cfg["max_lr"]),
                                   steps=int(cfg["steps"]), run=run)
    for lr in test:
        total = 0.0
        for _ in range(int(cfg["batch"])):
            if pos == len(order):
                rng.shuffle(order)
                pos = 0
            x, label = order[pos]
            pos += 1
            total += example_loss(model, x, label)
            model.step(x, label, lr, float(cfg["momentum"]), float(cfg["l2"]))
        test.record(total / int(cfg["batch"]))
    return test


def fit(lr, cfg, epochs):
    """Train a fresh network (seed ``cfg["seed"]``) at a constant ``lr`` for ``epochs`` epochs
    as the quickstart does; return (validation loss, validation accuracy)."""
    train, val = datasets()
    rng = random.Random(int(cfg["seed"]))
    model = quickstart.MLP(int(cfg["hidden"]), cfg["activation"], rng)
    for _ in range(epochs):
        rng.shuffle(train)
        for x, label in train:
            model.step(x, label, lr, float(cfg["momentum"]), float(cfg["l2"]))
    return model.evaluate(val)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in DEFAULTS.items():
        parser.add_argument("--" + name, type=type(default), default=default)
    args = parser.parse_args(argv)
    with hyperdial.init(config=vars(args), name="lr-range-test") as run:
        test = range_test(dict(run.config), run)
        result = test.result()
        print("stopped: %s after %d of %d steps" % (result["stop"], result["points"],
                                                    result["steps"]))
        if result["suggested_lr"] is None:
            print("no suggestion: %s" % result["reason"])
        else:
            print("suggested lr: %.3g (a tenth of the minimum-loss lr %.3g; steepest descent at %.3g)" % (
                result["suggested_lr"], result["min_loss_lr"], result["steepest_lr"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
