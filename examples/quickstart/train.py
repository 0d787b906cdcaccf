"""Train a small neural network on a generated two-moons dataset, standard library only.

The sweep in sweep.yaml tunes the learning rate, momentum, width, activation and L2 penalty.
The script reports through the hyperdial Python client: every epoch it logs `epoch`,
`val_loss` and `val_acc`, and it keeps `best_val_acc` in the run's summary.

Hyperparameters come from the defaults below, overridden by `--name=value` flags (what the
sweep's default command passes), overridden by the run's config under a hyperdial agent.

    python3 train.py                 # defaults; offline without a server (a note says where)
    python3 train.py --lr=0.2 --hidden=8
    hyperdial agent SWEEP_ID         # as part of a sweep
"""

import argparse
import math
import os
import random
import sys

try:
    import hyperdial
except ImportError:  # running from a checkout: use the client in <repo>/python
    sys.path.insert(
        0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "python")
    )
    import hyperdial

DEFAULTS = {
    "lr": 0.05,
    "momentum": 0.9,
    "hidden": 16,
    "activation": "tanh",
    "l2": 1e-4,
    "epochs": 20,
    "seed": 0,
}


def make_moons(n, noise, rng):
    """Two interleaving half circles (labels 0 and 1) with Gaussian noise."""
    points = []
    for i in range(n):
        label = i % 2
        t = rng.uniform(0.0, math.pi)
        if label == 0:
            x, y = math.cos(t), math.sin(t)
        else:
            x, y = 1.0 - math.cos(t), 0.5 - math.sin(t)
        points.append(((x + rng.gauss(0, noise), y + rng.gauss(0, noise)), label))
    return points


ACTIVATIONS = {
    "tanh": (math.tanh, lambda a: 1.0 - a * a),
    "relu": (lambda z: z if z > 0 else 0.0, lambda a: 1.0 if a > 0 else 0.0),
}


class MLP:
    """One hidden layer, sigmoid output, trained by SGD with momentum and L2 penalty."""

    def __init__(self, hidden, activation, rng):
        self.act, self.dact = ACTIVATIONS[activation]
        scale = 1.0 / math.sqrt(2)
        self.w1 = [[rng.gauss(0, scale) for _ in range(2)] for _ in range(hidden)]
        self.b1 = [0.0] * hidden
        self.w2 = [rng.gauss(0, 1.0 / math.sqrt(hidden)) for _ in range(hidden)]
        self.b2 = 0.0
        self.v1 = [[0.0, 0.0] for _ in range(hidden)]
        self.vb1 = [0.0] * hidden
        self.v2 = [0.0] * hidden
        self.vb2 = 0.0

    def forward(self, x):
        h = [self.act(w[0] * x[0] + w[1] * x[1] + b) for w, b in zip(self.w1, self.b1)]
        z = sum(w * a for w, a in zip(self.w2, h)) + self.b2
        p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
        return h, p

    def step(self, x, label, lr, momentum, l2):
        h, p = self.forward(x)
        dz = p - label  # d(cross-entropy)/dz for a sigmoid output
        for j, a in enumerate(h):
            dh = dz * self.w2[j] * self.dact(a)
            self.v2[j] = momentum * self.v2[j] - lr * (dz * a + l2 * self.w2[j])
            self.w2[j] += self.v2[j]
            for k in range(2):
                self.v1[j][k] = momentum * self.v1[j][k] - lr * (dh * x[k] + l2 * self.w1[j][k])
                self.w1[j][k] += self.v1[j][k]
            self.vb1[j] = momentum * self.vb1[j] - lr * dh
            self.b1[j] += self.vb1[j]
        self.vb2 = momentum * self.vb2 - lr * dz
        self.b2 += self.vb2

    def evaluate(self, data):
        loss, correct = 0.0, 0
        for x, label in data:
            _, p = self.forward(x)
            p = min(max(p, 1e-12), 1 - 1e-12)
            loss -= label * math.log(p) + (1 - label) * math.log(1 - p)
            correct += (p >= 0.5) == (label == 1)
        return loss / len(data), correct / len(data)


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
    # Under an agent the sweep's values (the run's config file) override the flags.
    with hyperdial.init(config=vars(args)) as run:
        cfg = run.config
        if cfg.activation not in ACTIVATIONS:
            print("unknown activation %r (choose from %s)" % (cfg.activation, ", ".join(ACTIVATIONS)),
                  file=sys.stderr)
            run.finish(exit_code=2)
            return 2
        lr, momentum, l2 = float(cfg.lr), float(cfg.momentum), float(cfg.l2)

        data_rng = random.Random(1234)  # the dataset is the same for every run
        train = make_moons(400, 0.2, data_rng)
        val = make_moons(200, 0.2, data_rng)
        rng = random.Random(int(cfg.seed))
        model = MLP(int(cfg.hidden), cfg.activation, rng)
        best_val_acc = 0.0
        for epoch in range(1, int(cfg.epochs) + 1):
            rng.shuffle(train)
            for x, label in train:
                model.step(x, label, lr, momentum, l2)
            val_loss, val_acc = model.evaluate(val)
            if not math.isfinite(val_loss):
                run.log({"epoch": epoch, "val_loss": float("nan")})
                print("epoch %d: training diverged" % epoch, file=sys.stderr)
                run.finish(exit_code=1)
                return 1
            best_val_acc = max(best_val_acc, val_acc)
            run.summary["best_val_acc"] = best_val_acc
            run.log({"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc})
            print("epoch %3d  val_loss %.4f  val_acc %.3f" % (epoch, val_loss, val_acc), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
