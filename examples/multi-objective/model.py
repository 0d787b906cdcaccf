"""A stand-in for training a model whose accuracy costs inference time, standard library only.

Deeper and wider networks make fewer errors but answer more slowly; dropout helps a large
network and hurts a small one. The script takes `--name=value` flags (the sweep's default
command passes them) and reports both objectives on one metric line, which a hyperdial agent
reads from standard output:

    hyperdial: {"error": 0.083, "latency_ms": 4.1}

    python3 model.py --layers=3 --width=64 --dropout=0.1
"""

import json
import math
import sys


def main(argv):
    p = {"layers": 2, "width": 32, "dropout": 0.1}
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            name, value = arg[2:].split("=", 1)
            if name in p:
                p[name] = float(value)
    capacity = p["layers"] * math.log2(p["width"])
    # Error falls with capacity; the right dropout grows with it.
    best_dropout = min(0.5, capacity / 60.0)
    error = 0.02 + 0.5 / (1.0 + capacity / 4.0) + 0.3 * (p["dropout"] - best_dropout) ** 2
    latency_ms = 0.4 + 0.02 * p["layers"] * p["width"] ** 1.2 / 10.0
    print("hyperdial: " + json.dumps({"error": round(error, 6), "latency_ms": round(latency_ms, 4)}))


if __name__ == "__main__":
    main(sys.argv[1:])
