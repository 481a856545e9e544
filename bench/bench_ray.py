"""find_maxes on Ray against one process, on this machine: images/s, the driver's merge cost and memory.

    python bench/bench_ray.py [--model M] [--layers units] [--batch 8] [--checkpoint-every 5]
        [--images 640] [--actors 1,2] [--repeats 2] [--memory 100,2000]

One local Ray instance (every core of this machine) for the whole run. On the same images, net and
shards, interleaved (one process, then each actor count, ``--repeats`` times; the best of each kept):
- one process: FindMaxes.run() as tools.find_maxes runs it;
- Ray with N actors: FindMaxes.run(pool=...) as ``--ray local --actors N`` runs it; its whole time
  includes making the actors (each loads the net).
The steady rate, for both, counts the images of the shards merged after the first one, over the time
from the first merge to the last: what a long run sees, without start-up and the end (ties, maxes.json).
Goal: Ray's steady rate with the cores of one process >= 0.85x of one process.
Merge: the driver's time in FindMaxes.add (write the shard's chunk, merge its top-k, checkpoint), as a
share of the run. Memory: the driver's peak resident size (VmHWM) for each count of images, each in a
fresh subprocess joined to the same Ray instance; goal: flat in the count.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.net import Net, heap  # noqa: E402
from app.offline import maxes as find  # noqa: E402
from app.settings import load_settings  # noqa: E402
from bench.bench_find_maxes import peak_resident_mib, write_images  # noqa: E402


def timed_run(job, pool=None) -> dict:
    """Wall seconds of job.run(), the seconds its add() took, and its steady rate: the images of the
    shards merged after the first one, over the time from the first merge to the last (a pool of N
    actors has up to N - 1 more shards under way at the first merge: many shards keep that small)."""
    spent, arrivals = [0.0], []
    add = job.add

    def timed_add(partial):
        started = time.perf_counter()
        start, stop = job.shards[partial.shard]
        arrivals.append((started, stop - start))
        add(partial)
        spent[0] += time.perf_counter() - started
    job.add = timed_add
    started = time.perf_counter()
    job.run(progress=False, pool=pool)
    wall = time.perf_counter() - started
    (first, _), (last, _) = arrivals[0], arrivals[-1]
    return {"wall": wall, "merge": spent[0], "startup": first - started,
            "rate": sum(count for _, count in arrivals[1:]) / (last - first)}


def child(args) -> None:
    """One find_maxes run on Ray, as its driver, in this fresh process; prints its peak resident size."""
    from app.offline.on_ray import Pool

    net = Net.load(args.model, provider="cpu")
    paths = write_images(Path(args.child_dir) / "images", args.child_count)
    pool = Pool(args.child_address, actors=1, provider="cpu")
    find.FindMaxes(net, paths, find.choose_layers(net, args.layers), Path(args.child_dir) / "out", batch=args.batch,
                   checkpoint_every=args.checkpoint_every).run(progress=False, pool=pool)
    print(peak_resident_mib())


def driver_peak_mib(args, count: int, address: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, __file__, "--child-count", str(count), "--child-dir", folder,
                   "--child-address", address, "--layers", args.layers, "--batch", str(args.batch),
                   "--checkpoint-every", str(args.checkpoint_every)] + (["--model", args.model] if args.model else [])
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main() -> None:
    heap.keep_freed_memory()  # as the offline tools run
    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--layers", default=settings.find_maxes_layers)
    parser.add_argument("--batch", type=int, default=settings.find_maxes_batch)
    parser.add_argument("--checkpoint-every", type=int, default=4, help="batches per shard (4)")
    parser.add_argument("--images", type=int, default=640)
    parser.add_argument("--actors", default="1,2", help="actor counts compared with one process")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory", default="100,2000", help="image counts compared for the driver's peak memory")
    parser.add_argument("--child-count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_count:
        return child(args)
    import ray

    from app.offline.on_ray import Pool

    ray.init(include_dashboard=False, logging_level="warning")
    address = ray.get_runtime_context().gcs_address
    net = Net.load(args.model, provider="cpu")
    layers = find.choose_layers(net, args.layers)
    counts = [int(count) for count in args.actors.split(",")]
    pools = {count: Pool(actors=count, provider="cpu") for count in counts}
    load_before = os.getloadavg()[0]
    runs = {"one process": []} | {f"Ray, {count} actor{'s' * (count > 1)}": [] for count in counts}
    with tempfile.TemporaryDirectory() as folder:
        paths = write_images(Path(folder) / "images", args.images)
        options = dict(batch=args.batch, checkpoint_every=args.checkpoint_every)
        find.FindMaxes(net, paths[:args.batch], layers, Path(folder) / "warm", **options).run(progress=False)
        for repeat in range(args.repeats):
            for name, pool in zip(runs, [None] + [pools[count] for count in counts]):
                job = find.FindMaxes(net, paths, layers, Path(folder) / f"{name}{repeat}", **options)
                runs[name].append(timed_run(job, pool))
        shards = len(job.shards)
    best = {name: max(results, key=lambda result: result["rate"]) for name, results in runs.items()}
    alone = best["one process"]["rate"]
    print(f"model {net.spec.name}, {len(layers)} layers scored, batch {args.batch}, {args.images} images in {shards} "
          f"shards, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"pool CPUs per actor {json.dumps({count: pools[count].resources.num_cpus for count in counts})}")
    for name, result in best.items():
        startup = f", first shard after {result['startup']:4.1f} s"
        print(f"{name:16s} {result['rate']:7.1f} images/s steady, {args.images / result['wall']:7.1f} images/s whole "
              f"run ({result['wall']:5.1f} s{startup}); ratio {result['rate'] / alone:.2f}x of one process "
              f"(goal >= 0.85x); merge {1000 * result['merge'] / shards:5.1f} ms/shard = "
              f"{100 * result['merge'] / result['wall']:4.1f} % of the run")
    counts = [int(count) for count in args.memory.split(",")]
    peaks = [driver_peak_mib(args, count, address) for count in counts]
    print("driver peak memory: " + " | ".join(f"{count} images {peak:7.1f} MiB" for count, peak in zip(counts, peaks))
          + f" | ratio {peaks[-1] / peaks[0]:.2f}x (goal: flat)")
    ray.shutdown()


if __name__ == "__main__":
    main()
