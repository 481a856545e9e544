"""Frames per second of the app's whole loop: forward of what is shown and read + guided backprop + drawing.

    python bench/bench_app.py [--model M] [--seconds 5] [--layer NAME] [--engine graph|numpy]
        [--random-weights SEED] [--switches 3]

Three figures on the sample photos, a new image every frame (as from a camera):
- live: the app's own threads. The compute thread (forward, then backward) runs on the newest
  frame while the main thread draws each snapshot that comes back, as the window does; its rate
  is the fps the status line shows.
- one after the other: the same three stages run in turn on one thread, to give each stage's
  time and share.
The cores may be shared with other programs (the load average is printed), so each frame of the
second measurement also times a reference, interleaved: a bare forward of the model as ONNX Runtime
runs it for classification alone (output only, fused), with the same session options.
- a layer switch: the first frame after each of ``--switches`` switches to the next layer (its
  forward and backward sessions made then), and the median of the frames after it.
"""
import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.inputs import default_input_dir, open_source  # noqa: E402
from app.net import Net, heap  # noqa: E402
from app.net.onnx_graph import runnable  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.ui.app import App  # noqa: E402
from app.ui.compute import Computer, request_for  # noqa: E402
from app.ui.state import next_state  # noqa: E402
from app.ui.workers import ComputeWorker  # noqa: E402


def frames(source, count: int) -> list:
    found = []
    while len(found) < count:
        frame = source.read()
        if frame is not None:
            found.append(frame)
            source.next()
    return found


def camera_like(frame):
    """The same picture as a new frame with new pixel arrays, as a camera gives: nothing computed for
    the last frame (requests compare frames by identity) can be reused."""
    return dataclasses.replace(frame, images=tuple(image.copy() for image in frame.images))


def live(app: App, net, inputs: list, seconds: float):
    """(frames computed per second, frames drawn per second) with the compute thread and the drawing
    overlapped. Like the window's loop, the main thread submits the newest frame, draws it with each
    new snapshot and waits key_wait_ms for a key."""
    worker = ComputeWorker(Computer(net)).start()
    finished, drawn, last = [], [], None
    frame = camera_like(inputs[0])
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            done = worker.latest()
            if done is not None and done is not last:
                last = done
                finished.append(time.perf_counter())
                app.render(app.view(frame, done.result, 1.0 / worker.seconds_per_job))
                drawn.append(time.perf_counter())
            frame = camera_like(inputs[len(finished) % len(inputs)])
            worker.submit(request_for(app.state, frame))
            time.sleep(app.settings.key_wait_ms / 1000)
    finally:
        worker.stop()
    return rate(finished), rate(drawn)


def rate(times: list) -> float:
    """Events per second from their times (the loop sees each one up to a loop turn late, which
    evens out over many)."""
    return (len(times) - 1) / (times[-1] - times[0])


def serial(app: App, net, inputs: list, count: int) -> dict:
    """Median seconds of each stage per frame, the stages run one after the other, and of the
    reference (a bare forward)."""
    bare = net.make_session(runnable(net.model))
    batch = net.preprocess([inputs[0].images[0]])
    stages = {"forward": [], "backward": [], "draw": [], "reference": []}
    computer = Computer(net)
    for index in range(count):
        start = time.perf_counter()
        bare.run(None, {net.input_name: batch})
        stages["reference"].append(time.perf_counter() - start)
        frame = camera_like(inputs[index % len(inputs)])
        snapshot = computer(request_for(app.state, frame))
        drawn = time.perf_counter()
        app.render(app.view(frame, snapshot, 0.0))
        stages["draw"].append(time.perf_counter() - drawn)
        stages["forward"].append(snapshot.seconds["forward"])
        stages["backward"].append(snapshot.seconds.get("backward", 0.0))
    return {name: float(np.median(seconds)) for name, seconds in stages.items()}


def switches(app: App, net, inputs: list, count: int, after: int = 4) -> tuple:
    """(seconds of the first frame after each of ``count`` switches to the next layer, median seconds
    of the ``after`` frames that follow each), computed as the compute thread does, drawing aside."""
    computer = Computer(net)
    computer(request_for(app.state, camera_like(inputs[0])))
    first, later = [], []
    for switch in range(count):
        app.state = next_state(app.state, "next_layer")
        for index in range(after + 1):
            frame = camera_like(inputs[(switch + index) % len(inputs)])
            start = time.perf_counter()
            computer(request_for(app.state, frame))
            (later if index else first).append(time.perf_counter() - start)
    return first, float(np.median(later))


def warm_up(app: App, net, inputs: list, seconds: float = 2.0) -> None:
    """Frames through the app's compute for ``seconds``: the sessions the loop makes (in the background
    too) are made before the measurements, as in a window that has been running a while."""
    computer = Computer(net)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        frame = camera_like(inputs[0])
        app.render(app.view(frame, computer(request_for(app.state, frame)), 0.0))


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measurement runs")
    parser.add_argument("--layer", default=None, help="layer the backprop starts from (default: a middle one)")
    parser.add_argument("--engine", default="graph", help="backward engine: graph or numpy")
    parser.add_argument("--random-weights", type=int, default=None, help="a Caffe model with seeded random weights")
    parser.add_argument("--switches", type=int, default=3, help="layer switches timed after the loop")
    args = parser.parse_args()
    settings = load_settings(provider="cpu")
    net = Net.load(args.model, provider="cpu", random_weights=args.random_weights)
    net.backward_engine = args.engine
    app = App(net, settings)
    layer = net.layers.index(net.layer(args.layer)) if args.layer else len(net.layers) // 2
    state = app.state
    for action in ["next_layer"] * layer + ["next_backprop_mode"] * 3:   # guided backprop
        state = next_state(state, action)
    app.state = state
    inputs = frames(open_source(str(default_input_dir())), 8)
    warm_up(app, net, inputs)
    load_before = os.getloadavg()[0]
    computed, drawn = live(app, net, inputs, args.seconds)
    median = serial(app, net, inputs, max(10, int(args.seconds * 10)))
    reference = median.pop("reference")
    frame_seconds = sum(median.values())
    print(f"model {net.spec.name} ({len(net.layers)} layers), guided backprop ({args.engine}) from "
          f"{net.layers[layer].name}, "
          f"{net.provider}, {os.cpu_count()} cores, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"live (compute thread + drawing): {computed:.1f} frames/s computed, {drawn:.1f} drawn")
    print(f"one after the other: {1 / frame_seconds:.1f} frames/s ({frame_seconds * 1000:.1f} ms a frame, "
          f"{frame_seconds / reference:.1f}x the reference's {reference * 1000:.1f} ms)")
    for name, seconds in median.items():
        print(f"  {name:<9} {seconds * 1000:7.1f} ms  {seconds / frame_seconds:6.1%}")
    if args.switches:
        first, later = switches(app, net, inputs, args.switches)
        print(f"layer switch: first frame {' / '.join(f'{s * 1000:.0f}' for s in first)} ms, "
              f"the frames after it {later * 1000:.0f} ms")


if __name__ == "__main__":
    main()
