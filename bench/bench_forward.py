"""Forward speed: every layer returned vs only the output, and images/s at batch 1 and 32.

    python bench/bench_forward.py [--model M] [--repeats 20]

Both sessions run in this process on the same provider and inputs; the ratio is what matters. The
slowest and fastest runs show how steady each is; the peak memory is the whole process's.
"""
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.net import Net, heap  # noqa: E402
from app.net.onnx_graph import runnable  # noqa: E402


def seconds_per_run(run, repeats: int) -> np.ndarray:
    """(median, fastest, slowest) seconds of a run after one warm-up run (the first run allocates)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return np.array([np.median(times), min(times), max(times)])


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    net = Net.load(args.model, provider="cpu")
    output_only = net.make_session(runnable(net.model))   # the same session options, the model's outputs only
    print(f"model {net.spec.name}, {len(net.layers)} layers, {len(net.tensor_types)} tensors kept, {net.provider}")
    for batch_size in (1, 32):
        batch = np.random.default_rng(0).standard_normal((batch_size,) + net.input_shape).astype(np.float32)
        repeats = args.repeats if batch_size == 1 else max(3, args.repeats // 4)
        every, every_low, every_high = seconds_per_run(lambda: net.forward(batch), repeats) * 1000
        output, output_low, output_high = seconds_per_run(lambda: output_only.run(None, {net.input_name: batch}),
                                                          repeats) * 1000
        print(f"batch {batch_size:2d}: every layer {every:8.1f} ms ({batch_size * 1000 / every:6.1f} images/s, "
              f"runs {every_low:.0f}-{every_high:.0f})"
              f" | output only {output:8.1f} ms ({batch_size * 1000 / output:6.1f} images/s, "
              f"runs {output_low:.0f}-{output_high:.0f}) | ratio {every / output:.2f}x")
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
