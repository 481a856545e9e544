"""Activation maximization speed: seconds per unit optimized one at a time vs many units in one batch.

    python bench/bench_optimize.py [--model M] [--layer L] [--iters 10] [--batch 8,32] [--cpu]
                                   [--size 128] [--engines graph,numpy]

Every run uses the same net, layer, preset and step count in this process, each batch size after
one warm-up step at that size (optimize_layer runs batch after batch of one size); a unit's full run
costs about (preset iterations / --iters) times the figure shown. The ratios are what matter.
--engines times each backward engine (run.backward's graph or NumPy walk) in turn, batch by batch.
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
    parser.add_argument("--size", type=int, default=None, help="input size in pixels (default: the model's)")
    parser.add_argument("--engines", default="graph", help="backward engines to compare: graph,numpy")
    args = parser.parse_args()
    net = Net.load(args.model, provider="cpu" if args.cpu else "auto",
                   input=dict(size=[args.size, args.size]) if args.size else None)
    engines = args.engines.split(",")
    layer = args.layer or [item.name for item in net.layers if item.kind == "map" and item.shape[1] <= 14][0]
    channels = net.layer(layer).shape[0]
    print(f"model {net.spec.name}, layer {layer} {net.layer(layer).shape}, preset {args.preset}, "
          f"{args.iters} steps, {net.provider}")
    single = {}
    for batch in [1] + sorted({min(int(size), channels) for size in args.batch.split(",")}):
        first = None
        for engine in engines:   # in turn at each size: a busy machine slows them alike
            net.backward_engine = engine
            seconds = seconds_per_unit(net, layer, batch, args.iters, args.preset)
            single.setdefault(engine, seconds)
            line = f"batch {batch:2d}, {engine:5}: {seconds:7.3f} s/unit"
            if batch > 1:
                line += f" | batching {single[engine] / seconds:.2f}x as fast per unit (below 1: slower)"
            if first is None:
                first = seconds
            else:
                line += f" | {engines[0]} {seconds / first:.2f}x as fast as {engine}"
            print(line)


if __name__ == "__main__":
    main()
