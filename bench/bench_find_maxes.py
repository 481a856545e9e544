"""find_maxes speed against a bare forward of the same net, and its peak memory for few vs many images.

    python bench/bench_find_maxes.py [--model M] [--layers all] [--batch 32] [--images 200]
        [--memory 100,1000]

Speed: the same decoded images, batch and net, in this process: find_maxes (decode in a thread,
forward, spatial maxima, top-k, checkpoints, channel maxima chunks) vs Net.forward alone on batches
decoded and preprocessed beforehand; goal >= 0.8x. Memory: each count of images runs find_maxes in a
fresh subprocess that reports its peak resident size (ru_maxrss); goal: flat in the count.
"""
import argparse
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
from app.inputs.files import load_image  # noqa: E402
from app.net import Net  # noqa: E402
from app.offline import maxes as find  # noqa: E402


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


def bare_forward_seconds(net, paths: list, batch: int) -> float:
    """Net.forward over batches decoded and preprocessed before the clock starts."""
    batches = [net.preprocess([load_image(p, p)[0] for p in paths[start:start + batch]])
               for start in range(0, len(paths), batch)]
    net.forward(batches[0])  # warm-up
    start = time.perf_counter()
    for images in batches:
        net.forward(images)
    return time.perf_counter() - start


def find_maxes_seconds(net, paths: list, layers: list, batch: int, out: Path) -> float:
    find.FindMaxes(net, paths[:batch], layers, out / "warm", batch=batch).run(progress=False)
    start = time.perf_counter()
    find.FindMaxes(net, paths, layers, out / "run", batch=batch).run(progress=False)
    return time.perf_counter() - start


def child(args) -> None:
    """One find_maxes run in this fresh process; prints the peak resident size in MiB."""
    net = Net.load(args.model, provider="cpu")
    paths = write_images(Path(args.child_dir) / "images", args.child_count)
    find.FindMaxes(net, paths, find.choose_layers(net, args.layers), Path(args.child_dir) / "out",
                   batch=args.batch).run(progress=False)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2 ** 20)


def peak_mib(args, count: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, __file__, "--child-count", str(count), "--child-dir", folder,
                   "--layers", args.layers, "--batch", str(args.batch)] + (["--model", args.model] if args.model else [])
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--layers", default="all")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--memory", default="100,1000", help="image counts compared for peak memory")
    parser.add_argument("--child-count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_count:
        return child(args)
    net = Net.load(args.model, provider="cpu")
    layers = find.choose_layers(net, args.layers)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_images(Path(folder) / "images", args.images)
        # bare forward before and after, the faster counted: the ratio is not flattered by warm-up
        bare = bare_forward_seconds(net, paths, args.batch)
        scored = find_maxes_seconds(net, paths, layers, args.batch, Path(folder))
        bare = min(bare, bare_forward_seconds(net, paths, args.batch))
    print(f"model {net.spec.name}, {len(layers)} layers scored, batch {args.batch}, {args.images} images, {net.provider}")
    print(f"bare forward {args.images / bare:7.1f} images/s | find_maxes {args.images / scored:7.1f} images/s"
          f" | ratio {bare / scored:.2f}x (goal >= 0.8x)")
    counts = [int(count) for count in args.memory.split(",")]
    peaks = [peak_mib(args, count) for count in counts]
    print("peak memory: " + " | ".join(f"{count} images {peak:7.1f} MiB" for count, peak in zip(counts, peaks))
          + f" | ratio {peaks[-1] / peaks[0]:.2f}x (goal: flat)")


if __name__ == "__main__":
    main()
