"""Activation maximization speed: seconds per unit optimized one at a time vs many units in one batch.

    python bench/bench_optimize.py [--model M] [--layer L] [--iters 10] [--batch 8,32] [--cpu]
                                   [--preset 3] [--size 128] [--engines graph,numpy]

Every run uses the same net, layer, preset and step count in this process, each batch size after
one warm-up step at that size (optimize_layer runs batch after batch of one size); a unit's full run
costs about (preset iterations / --iters) times the figure shown. The ratios are what matter.
--preset: 1-5 (the paper's, in the net's input space) or lucid, maco (a parameterized image of
--size pixels a side, seen by the net at its own input size). For 1-5, --size sets the net's input
(a model whose file fixes it keeps its own).
--engines times each backward engine in turn, batch by batch: graph (a step is one session, the
forward to the layer and the backward to the input) or numpy (a forward run, then the NumPy walk).
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.net import Net, heap  # noqa: E402
from app.offline.optimize import optimize_units, preset_named, render_units  # noqa: E402
from app.offline.regularizers import Preset  # noqa: E402


def seconds_per_unit(net, layer: str, batch: int, iterations: int, preset: str, size: int) -> float:
    _, settings = preset_named(preset)
    if isinstance(settings, Preset):
        def optimize(steps):
            optimize_units(net, layer, range(batch), settings, seed=0, iterations=steps)
    else:
        def optimize(steps):
            render_units(net, layer, range(batch), settings, iterations=steps, size=(size, size) if size else None)
    optimize(1)  # warm-up: first runs allocate
    start = time.perf_counter()
    optimize(iterations)
    return (time.perf_counter() - start) / batch


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--layer", default=None, help="default: the model's first map layer of 14 x 14 or less")
    parser.add_argument("--iters", type=int, default=10, help="steps per unit (10)")
    parser.add_argument("--batch", default="8,32", help="batch sizes to compare with batch 1 (8,32)")
    parser.add_argument("--preset", default="3", help="1-5, lucid or maco (3)")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--size", type=int, default=None,
                        help="lucid, maco: the image's side (default: the recipe's); 1-5: the net's input")
    parser.add_argument("--engines", default="graph", help="backward engines to compare: graph,numpy")
    args = parser.parse_args()
    paper = isinstance(preset_named(args.preset)[1], Preset)
    net = Net.load(args.model, provider="cpu" if args.cpu else "auto",
                   input=dict(size=[args.size, args.size]) if args.size and paper else None)
    engines = args.engines.split(",")
    layer = args.layer or [item.name for item in net.layers if item.kind == "map" and item.shape[1] <= 14][0]
    channels = net.layer(layer).shape[0]
    image = f"{args.size or 'default'} px image" if not paper else f"input {net.input_shape[1:]}"
    print(f"model {net.spec.name}, layer {layer} {net.layer(layer).shape}, preset {args.preset}, {image}, "
          f"{args.iters} steps, {net.provider}, load average {os.getloadavg()[0]:.1f}")
    single = {}
    for batch in [1] + sorted({min(int(size), channels) for size in args.batch.split(",")}):
        first = None
        for engine in engines:   # in turn at each size: a busy machine slows them alike
            net.backward_engine = engine
            seconds = seconds_per_unit(net, layer, batch, args.iters, args.preset, args.size)
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
