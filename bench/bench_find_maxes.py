"""find_maxes speed against the forward pass of the same net, and its peak memory for few vs many images.

    python bench/bench_find_maxes.py [--model M] [--layers units] [--batch 8] [--images 1000]
        [--memory 100,1000]

Speed, on the same images, batch and net in this process:
- Net.forward (the reference of the goal): the toolbox's forward pass, every layer's activations in
  one run, on batches decoded and preprocessed beforehand; find_maxes needs the chosen layers'
  activations, and this is the forward that gives them;
- plain forward: the model's own graph, final outputs only, so ONNX Runtime fuses and lays out as it
  likes: a bound, since reading any layer costs reads of its own (see docs/offline_images.md);
- find_maxes: a whole run() (decode in a thread, maxima in the graph, top-k, checkpoints, channel
  maxima chunks, maxes.json); the job is built (its session made) before the clock starts.
Goal: find_maxes >= 0.8x Net.forward. Wall and CPU time are both reported, with the load average: on
shared cores the CPU time of this process moves less than the wall time.
Memory: each count of images runs find_maxes in a fresh subprocess that reports its peak resident
size (VmHWM); goal: flat in the count.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.net import Net, heap, onnx_graph  # noqa: E402
from app.net.preprocess import read_image  # noqa: E402
from app.offline import maxes as find  # noqa: E402
from app.settings import load_settings  # noqa: E402


def write_images(folder: Path, count: int, size=(96, 128)) -> list:
    """Small random photos-to-be (PNG), every one different."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"img{index:05d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, size + (3,), dtype=np.uint8))
        paths.append(str(path))
    return paths


def batches_of(net, paths: list, batch: int) -> list:
    return [net.preprocess([read_image(p) for p in paths[start:start + batch]])
            for start in range(0, len(paths), batch)]


def timed(work) -> tuple:
    """(wall seconds, CPU seconds of this process, every thread) of ``work()``. The CPU time moves
    less than the wall time when other programs share the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def forward_times(forward, batches: list) -> tuple:
    def run_all():
        for images in batches:
            forward(images)   # each result dropped at once, as find_maxes drops its batches
    forward(batches[0])  # warm-up
    return timed(run_all)


def plain_forward(net):
    """The model's own graph, final outputs only."""
    session = net.make_session(onnx_graph.runnable(net.model))
    return lambda images: session.run(None, {net.input_name: images})


def find_maxes_times(net, paths: list, layers: list, batch: int, out: Path) -> tuple:
    find.FindMaxes(net, paths[:batch], layers, out / "warm", batch=batch).run(progress=False)
    job = find.FindMaxes(net, paths, layers, out / "run", batch=batch)
    return timed(lambda: job.run(progress=False))


def child(args) -> None:
    """One find_maxes run in this fresh process; prints the peak resident size in MiB."""
    net = Net.load(args.model, provider="cpu")
    paths = write_images(Path(args.child_dir) / "images", args.child_count)
    find.FindMaxes(net, paths, find.choose_layers(net, args.layers), Path(args.child_dir) / "out",
                   batch=args.batch).run(progress=False)
    print(peak_resident_mib())


def peak_resident_mib() -> float:
    """This process's peak resident size. Linux's ru_maxrss keeps the parent's peak across fork and
    exec, so the bench's own large arrays would show; VmHWM belongs to this program's memory only."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024
    except (OSError, StopIteration):
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2 ** 20


def peak_mib(args, count: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, __file__, "--child-count", str(count), "--child-dir", folder,
                   "--layers", args.layers, "--batch", str(args.batch)] + (["--model", args.model] if args.model else [])
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--layers", default=settings.find_maxes_layers)
    parser.add_argument("--batch", type=int, default=settings.find_maxes_batch)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--memory", default="100,1000", help="image counts compared for peak memory")
    parser.add_argument("--child-count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_count:
        return child(args)
    net = Net.load(args.model, provider="cpu")
    layers = find.choose_layers(net, args.layers)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        paths = write_images(Path(folder) / "images", args.images)
        batches, plain = batches_of(net, paths, args.batch), plain_forward(net)
        # plain forward before and after, the faster counted: the ratio is not flattered by warm-up.
        # Net.forward last: it leaves ONNX Runtime's arena and the heap at their biggest
        plain_before = forward_times(plain, batches)
        scored = find_maxes_times(net, paths, layers, args.batch, Path(folder))
        bare = tuple(map(min, plain_before, forward_times(plain, batches)))
        every = forward_times(net.forward, batches)
    print(f"model {net.spec.name}, {len(layers)} layers scored, batch {args.batch}, {args.images} images, "
          f"{net.provider}, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, (wall, cpu) in (("plain forward (final outputs only)", bare), ("Net.forward (every tensor)", every),
                              ("find_maxes (whole run)", scored)):
        print(f"{name:36s} {args.images / wall:7.1f} images/s  {1000 * cpu / args.images:6.1f} CPU ms/image")
    for name, (wall, cpu) in (("plain forward", bare), ("Net.forward", every)):
        goal = " (goal >= 0.8x)" if name == "Net.forward" else ""
        print(f"find_maxes / {name}: {wall / scored[0]:.2f}x by wall time, "
              f"{cpu / scored[1]:.2f}x by CPU time{goal}")
    counts = [int(count) for count in args.memory.split(",")]
    peaks = [peak_mib(args, count) for count in counts]
    print("peak memory: " + " | ".join(f"{count} images {peak:7.1f} MiB" for count, peak in zip(counts, peaks))
          + f" | ratio {peaks[-1] / peaks[0]:.2f}x (goal: flat)")


if __name__ == "__main__":
    main()
