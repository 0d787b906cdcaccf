"""Train a small neural network on a generated two-moons dataset, standard library only.

The sweep in sweep.yaml tunes the learning rate, momentum, width, activation and L2 penalty.
Each epoch prints one JSON line with the validation loss and accuracy, e.g.

    {"epoch": 3, "val_loss": 0.412, "val_acc": 0.87}

Run it on its own with defaults: python3 train.py --lr=0.05
"""

import argparse
import json
import math
import random
import sys


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="tanh")
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data_rng = random.Random(1234)  # the dataset is the same for every run
    train = make_moons(400, 0.2, data_rng)
    val = make_moons(200, 0.2, data_rng)
    rng = random.Random(args.seed)
    model = MLP(args.hidden, args.activation, rng)
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        for x, label in train:
            model.step(x, label, args.lr, args.momentum, args.l2)
        val_loss, val_acc = model.evaluate(val)
        if not math.isfinite(val_loss):
            print(json.dumps({"epoch": epoch, "val_loss": None}), flush=True)
            print("training diverged", file=sys.stderr)
            return 1
        print(json.dumps({"epoch": epoch, "val_loss": round(val_loss, 6), "val_acc": val_acc}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
