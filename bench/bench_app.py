"""Frames per second of the app's whole loop: forward of every layer + guided backprop + drawing.

    python bench/bench_app.py [--model M] [--frames 30] [--layer NAME]

Runs what the compute thread and the main thread do for each new frame, one after the other, on
the sample photos (a new image every frame), and prints the share of each stage. The live app
overlaps computing and drawing in two threads, so its rate is at least this one.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.inputs import default_input_dir, open_source  # noqa: E402
from app.net import Net  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.ui.app import App  # noqa: E402
from app.ui.compute import compute, request_for  # noqa: E402
from app.ui.state import next_state  # noqa: E402


def frames(source, count: int) -> list:
    found = []
    while len(found) < count:
        frame = source.read()
        if frame is not None:
            found.append(frame)
            source.next()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--layer", default=None, help="layer the backprop starts from (default: a middle one)")
    args = parser.parse_args()
    settings = load_settings(provider="cpu")
    net = Net.load(args.model, provider="cpu")
    app = App(net, settings)
    layer = net.layers.index(net.layer(args.layer)) if args.layer else len(net.layers) // 2
    state = app.state
    for action in ["next_layer"] * layer + ["next_backprop_mode"] * 3:   # guided backprop
        state = next_state(state, action)
    app.state = state
    inputs = frames(open_source(str(default_input_dir())), 8)
    compute(net, request_for(state, inputs[0]))   # warm-up
    stages = {"forward": [], "backward": [], "draw": []}
    start = time.perf_counter()
    for index in range(args.frames):
        frame = inputs[index % len(inputs)]
        snapshot = compute(net, request_for(state, frame))
        drawn = time.perf_counter()
        app.render(app.view(frame, snapshot, 0.0))
        stages["draw"].append(time.perf_counter() - drawn)
        stages["forward"].append(snapshot.seconds["forward"])
        stages["backward"].append(snapshot.seconds.get("backward", 0.0))
    total = time.perf_counter() - start
    print(f"model {net.spec.name} ({len(net.layers)} layers), guided backprop from {net.layers[layer].name}, "
          f"{net.provider}")
    print(f"whole loop: {args.frames / total:.1f} frames/s ({total / args.frames * 1000:.1f} ms a frame)")
    for name, seconds in stages.items():
        mean = float(np.mean(seconds))
        print(f"  {name:<9} {mean * 1000:7.1f} ms  {mean / (total / args.frames):6.1%}")


if __name__ == "__main__":
    main()
