"""A stand-in for training with a conditional search space, standard library only.

The sweep in sweep.yaml chooses an optimizer and its own settings (`momentum` and
`nesterov` exist only for SGD, `beta2` only for Adam) and a depth with one width per layer
that exists. The script receives only the parameters that are active in its run, as
`--name=value` flags, and checks that: a flag for a setting its optimizer does not have, or
for a layer the network does not have, is an error. It then reports a made-up validation
loss (smooth in every setting; Adam with beta2 0.999 and three layers narrowing from 128 is
best) on the `hyperdial:` line that agents read.

    python3 train.py --optimizer=sgd --lr=0.01 --momentum=0.9 --nesterov=True --layers=1 --width_1=64
    hyperdial tune sweep.yaml --agents 2
"""

import argparse
import json
import math
import sys

p = argparse.ArgumentParser()
p.add_argument("--optimizer", choices=["sgd", "adam"], required=True)
p.add_argument("--lr", type=float, required=True)
p.add_argument("--momentum", type=float)
p.add_argument("--nesterov", choices=["True", "False"])
p.add_argument("--beta2", type=float)
p.add_argument("--layers", type=int, required=True)
for i in (1, 2, 3):
    p.add_argument("--width_%d" % i, type=int)
args = p.parse_args()

sgd = args.optimizer == "sgd"
expected = {"momentum": sgd, "nesterov": sgd, "beta2": not sgd,
            "width_1": True, "width_2": args.layers >= 2, "width_3": args.layers == 3}
for name, active in expected.items():
    if (getattr(args, name) is not None) != active:
        sys.exit("--%s should %sbe given for this run" % (name, "" if active else "not "))

loss = 0.3 * (math.log10(args.lr) + 2.5) ** 2
if sgd:
    loss += 0.15 + (args.momentum - 0.9) ** 2 + (0.0 if args.nesterov == "True" else 0.05)
else:
    loss += 20 * abs(args.beta2 - 0.999)
targets = {1: 128, 2: 64, 3: 32}
loss += {1: 0.4, 2: 0.15, 3: 0.0}[args.layers]
for i in range(1, args.layers + 1):
    loss += 0.1 * (math.log2(getattr(args, "width_%d" % i)) - math.log2(targets[i])) ** 2
print("hyperdial: " + json.dumps({"val_loss": loss}), flush=True)
