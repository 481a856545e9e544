"""crop_max_patches seconds per unit, this code against the code of another revision, in one run.

    python bench/bench_crops.py [--model M] [--layers blocks.1.1.add,blocks.2.1.add,blocks.3.2.add,blocks.4.2.add,head]
        [--units 8] [--images 32] [--batch 8] [--repeats 3] [--reference 13756c6]

find_maxes scores the scikit-image sample photos (flipped and quartered into --images photos) once;
then, per layer and repeat, each code crops the same --units units in a fresh process, the two codes
interleaved: the reference revision (default: the code before one forward up to the layer, cached
inputs and scaled fields larger than the image), extracted with ``git archive``, and this working tree.
Each process crops one unit first (sessions and the backward plan made, not counted), then times
crop_layer on the others with all four modes; the layer's sprite, written once per run, is left out.
Figures: median seconds per unit of each code and the ratio reference / this code, in wall-clock
time and in the CPU time of the process (all its threads): on a machine shared with other programs
the CPU time moves far less than the wall-clock time.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.inputs.samples import SAMPLES  # noqa: E402
from app.net import Net, heap  # noqa: E402
from app.offline import maxes as find  # noqa: E402
from app.settings import load_settings  # noqa: E402

REFERENCE = "13756c6"  # the code before this bench
CHILD = """
import json, sys, time
from app.net import Net, heap
from app.offline import crops
from app.offline.maxes import read_maxes
from tools.crop_max_patches import fields_for
heap.keep_freed_memory()
maxes_path, layer, units, batch, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
maxes = read_maxes(maxes_path)
net = Net.load(maxes["model"], provider="cpu")
field = fields_for(net, [layer]).get(layer)
crops.write_sprite = lambda *args: None
crops.crop_layer(net, maxes, layer, out, field, units=[0], batch=batch, progress=False)
started, cpu = time.perf_counter(), time.process_time()
crops.crop_layer(net, maxes, layer, out, field, units=range(1, units), batch=batch, progress=False)
print(json.dumps({"wall": (time.perf_counter() - started) / (units - 1), "cpu": (time.process_time() - cpu) / (units - 1)}))
"""


def write_photos(folder: Path, count: int) -> list:
    """The sample photos, each also flipped and cut into its top-left and bottom-right quarters."""
    folder.mkdir(parents=True, exist_ok=True)
    variants = []
    for name, photo in SAMPLES.items():
        image = cv2.cvtColor(photo(), cv2.COLOR_RGB2BGR)
        height, width = image.shape[:2]
        variants += [(name, image), (name, cv2.flip(image, 1)), (name, image[:height // 2, :width // 2]),
                     (name, image[height // 2:, width // 2:])]
    paths = []
    for index in range(count):
        name, image = variants[index % len(variants)]
        path = folder / f"{index:04d}_{name}"
        cv2.imwrite(str(path), image)
        paths.append(str(path))
    return paths


def extract(revision: str, folder: Path) -> Path:
    """The tree of ``revision`` of this repository, written under ``folder``."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True)
    if archive.returncode:
        sys.exit(f"error: --reference {revision}: git archive failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def seconds_per_unit(tree: Path, maxes: Path, layer: str, units: int, batch: int, out: Path) -> dict:
    """{"wall": s, "cpu": s} per unit of one process cropping ``units`` units of ``layer`` with the code of ``tree``."""
    environment = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, "-c", CHILD, str(maxes), layer, str(units), str(batch), str(out)], cwd=tree,
                          env=environment, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: {tree}: {layer}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--layers", default="blocks.1.1.add,blocks.2.1.add,blocks.3.2.add,blocks.4.2.add,head")
    parser.add_argument("--units", type=int, default=8, help="units cropped per run, the first one not timed")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=settings.crop_batch, help="top-k entries run together")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", default=REFERENCE, help=f"git revision to compare with ({REFERENCE})")
    args = parser.parse_args()
    if args.units < 2:
        sys.exit("error: --units must be at least 2 (the first one is not timed)")
    net = Net.load(args.model, provider="cpu")
    layers = args.layers.split(",")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        paths = write_photos(folder / "images", args.images)
        find.FindMaxes(net, paths, layers, folder / "maxes", model=args.model, top=9,
                       stats=False).run(progress=False)
        trees = {"reference": extract(args.reference, Path(tempfile.mkdtemp(dir=folder))), "this code": ROOT}
        times = {(layer, name): [] for layer in layers for name in trees}
        for repeat in range(args.repeats):
            for layer in layers:
                for name, tree in trees.items():
                    out = folder / f"{name}_{repeat}".replace(" ", "_")
                    times[layer, name].append(seconds_per_unit(tree, folder / "maxes" / "maxes.json", layer,
                                                               args.units, args.batch, out))
    print(f"model {net.spec.name}, {args.images} images, {args.units - 1} units timed per run, all four modes, "
          f"batch {args.batch}, {args.repeats} runs each, reference {args.reference}, load average {load_before:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for layer in layers:
        for clock in ("wall", "cpu"):
            runs = {name: [run[clock] for run in times[layer, name]] for name in trees}
            before, after = (statistics.median(runs[name]) for name in trees)
            print(f"{layer:24s} {clock:4s} reference {before:6.3f} s/unit  this code {after:6.3f} s/unit  "
                  f"ratio {before / after:5.2f}x  (runs: {', '.join(f'{t:.3f}' for t in runs['reference'])} | "
                  f"{', '.join(f'{t:.3f}' for t in runs['this code'])})")


if __name__ == "__main__":
    main()
