"""Every benchmark script runs to its report on a small model (the figures themselves are not
checked here: speed is measured by running the scripts, never in tests)."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ui_support

ROOT = Path(__file__).resolve().parents[1]
MNIST = str(ui_support.MNIST)
LENET = str(ui_support.TESTDATA / "lenet_mnist" / "lenet.prototxt")

RUNS = {
    "bench_atlas.py": (["--scale", "0.02", "--top", "3", "--crop-units", "1", "--images", "8", "--paints", "1"],
                       "grid painted"),
    "bench_forward.py": (["--model", MNIST, "--repeats", "1"], "ratio"),
    "bench_caffe.py": (["--prototxt", LENET, "--repeats", "1"], "ratio of medians"),
    "bench_backward.py": (["--nets", "default", "--repeats", "1"], "numpy"),
    "bench_app.py": (["--model", MNIST, "--seconds", "0.3"], "frames/s"),
    "bench_web.py": (["--model", MNIST, "--seconds", "0.5", "--rounds", "1", "--keys", "2"], "frames/s received"),
    "bench_optimize.py": (["--model", MNIST, "--iters", "1", "--batch", "2", "--cpu"], "s/unit"),
    "bench_featurevis.py": (["--model", MNIST, "--classes", "0,1", "--steps", "2", "--maco-crops", "2", "--batch",
                             "2", "--cpu"], "top-5 under perturbations"),
    "bench_find_maxes.py": (["--model", MNIST, "--images", "8", "--batch", "4", "--memory", "4,8"], "peak memory"),
    "bench_ray.py": (["--model", MNIST, "--images", "16", "--batch", "4", "--checkpoint-every", "1", "--actors", "1",
                      "--repeats", "1", "--memory", "8,16"], "goal: flat"),
    "bench_crops.py": (["--model", MNIST, "--layers", "Convolution110_Output_0", "--units", "2", "--images", "8",
                        "--repeats", "1", "--reference", "HEAD"], "cpu  reference"),
}


def test_every_bench_script_is_covered():
    assert sorted(RUNS) == sorted(path.name for path in (ROOT / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("script", sorted(RUNS))
def test_bench_runs_to_its_report(script):
    arguments, expected = RUNS[script]
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *arguments], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout, done.stdout[-2000:]


def test_featurevis_figure_names_each_column_and_rows_each_preset(tmp_path):
    bench = ROOT / "bench" / "bench_featurevis.py"
    script = ("import sys, numpy as np, runpy; sys.argv = ['x']; "
              f"module = runpy.run_path({str(bench)!r}); "
              "rows = {name: [np.full((64, 64, 3), 30 * (i + 1), np.uint8) for i in range(8)] for name in ('a', 'b')}; "
              f"module['figure'](rows, {str(tmp_path / 'figure.png')!r}, ['tench, Tinca tinca'] + ['goldfish'] * 7)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    import cv2

    picture = cv2.imread(str(tmp_path / "figure.png"))
    assert picture.shape == (24 + 2 * (128 + 4), 150 + 8 * 128 + 7 * 2, 3)
    header = picture[:24, 150:150 + 128]
    assert (header > 128).sum() > 40   # the first column's class name is written there
    assert not picture[:24, :150].any()   # above the preset names: nothing
