"""Activation maximization speed: seconds per unit optimized one at a time vs many units in one batch.

    python bench/bench_optimize.py [--model M] [--layer L] [--iters 10] [--batch 8,32] [--cpu]

Every run uses the same net, layer, preset and step count in this process, each batch size after
one warm-up step at that size (optimize_layer runs batch after batch of one size); a unit's full run
costs about (preset iterations / --iters) times the figure shown. The ratios are what matter.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.net import Net, heap  # noqa: E402
from app.offline.optimize import optimize_units  # noqa: E402
from app.offline.regularizers import PRESETS  # noqa: E402


def seconds_per_unit(net, layer: str, batch: int, iterations: int, preset: int) -> float:
    optimize_units(net, layer, range(batch), PRESETS[preset], iterations=1)  # warm-up: first runs allocate
    start = time.perf_counter()
    optimize_units(net, layer, range(batch), PRESETS[preset], seed=0, iterations=iterations)
    return (time.perf_counter() - start) / batch


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--layer", default=None, help="default: the model's last map layer of 14 x 14 or less")
    parser.add_argument("--iters", type=int, default=10, help="steps per unit (10)")
    parser.add_argument("--batch", default="8,32", help="batch sizes to compare with batch 1 (8,32)")
    parser.add_argument("--preset", type=int, default=3)
    parser.add_argument("--cpu", action="store_true")
    args = parser.parse_args()
    net = Net.load(args.model, provider="cpu" if args.cpu else "auto")
    layer = args.layer or [item.name for item in net.layers if item.kind == "map" and item.shape[1] <= 14][0]
    channels = net.layer(layer).shape[0]
    print(f"model {net.spec.name}, layer {layer} {net.layer(layer).shape}, preset {args.preset}, "
          f"{args.iters} steps, {net.provider}")
    single = seconds_per_unit(net, layer, 1, args.iters, args.preset)
    print(f"batch  1: {single:7.3f} s/unit")
    for batch in sorted({min(int(size), channels) for size in args.batch.split(",")}):
        many = seconds_per_unit(net, layer, batch, args.iters, args.preset)
        print(f"batch {batch:2d}: {many:7.3f} s/unit | batching {single / many:.2f}x as fast per unit (below 1: slower)")


if __name__ == "__main__":
    main()
