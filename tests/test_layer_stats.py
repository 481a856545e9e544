"""layer_stats: histograms, percent dead, inactivity and correlation equal a direct numpy computation
on the concatenated channel maxima; the orders are permutations; the tool writes the PNGs and arrays."""
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.files import read_npz
from app.net import Net
from app.offline import layer_stats as stats
from app.offline import maxes as find
from app.unit_images import folder_name
from app.views import filters
from tests.test_find_maxes import tiny_net_file, write_images

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["relu1", "conv2", "fc"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """find_maxes over 23 images in chunks of 2 batches of 3 (several chunks, a short last one)."""
    folder = tmp_path_factory.mktemp("stats")
    net = Net.load(str(tiny_net_file(folder)), provider="cpu")
    paths = [str(p) for p in write_images(folder / "images", 23)]
    out = folder / "out"
    find.FindMaxes(net, paths, LAYERS, out, batch=3, checkpoint_every=2).run(progress=False)
    return out


def concatenated(out: Path, index: int) -> np.ndarray:
    chunks = sorted((out / find.CHUNK_DIR).glob("chunk_*.npz"))
    assert len(chunks) > 2
    return np.concatenate([read_npz(chunk)[f"l{index}"] for chunk in chunks]).astype(np.float64)


@pytest.mark.parametrize("index, layer", list(enumerate(LAYERS)))
def test_numbers_equal_numpy_on_the_concatenated_maxima(run, index, layer):
    result = stats.layer_stats(run / find.MAXES_FILE, [layer], bins=7, order="none", progress=False)[layer]
    values = concatenated(run, index)
    assert result.images == len(values) == 23
    for channel in range(values.shape[1]):
        column = values[:, channel]
        low = min(column.min(), 0.0)
        if column.max() > low:  # a constant channel gets a bin width of 1 instead
            np.testing.assert_allclose(result.edges[channel], np.linspace(low, column.max(), 8), rtol=0, atol=1e-12)
        assert np.array_equal(result.counts[channel], np.histogram(column, result.edges[channel])[0])
        assert result.counts[channel].sum() == 23
    dead = 100.0 * (values <= 0).mean(axis=0)
    np.testing.assert_allclose(result.percent_dead, dead)
    assert np.array_equal(result.inactivity_counts, np.histogram(dead, bins=7, range=(0, 100))[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.nan_to_num(np.corrcoef(values, rowvar=False), nan=0.0)
    np.testing.assert_allclose(result.correlation, expected, atol=1e-9)
    assert np.array_equal(result.order, np.arange(values.shape[1]))


def test_the_dead_channel_is_found(run):
    result = stats.layer_stats(run / find.MAXES_FILE, ["relu1"], bins=5, progress=False)["relu1"]
    assert result.percent_dead[0] == 100.0 and result.percent_dead[1:].max() < 100.0
    assert not result.correlation[0].any()  # a constant channel correlates with nothing


@pytest.mark.parametrize("order", ["cluster", "pca"])
def test_orders_are_permutations_that_group_correlated_channels(order):
    rng = np.random.default_rng(1)
    base = rng.normal(size=(200, 2))
    # channels 0, 2, 4 follow one signal, 1, 3, 5 the other
    values = base[:, [0, 1, 0, 1, 0, 1]] + 0.05 * rng.normal(size=(200, 6))
    correlation = np.corrcoef(values, rowvar=False)
    permutation = stats.correlation_order(correlation, order)
    assert sorted(permutation.tolist()) == list(range(6))
    groups = [set(permutation[:3].tolist()), set(permutation[3:].tolist())]
    assert {0, 2, 4} in groups and {1, 3, 5} in groups


def test_tool_writes_arrays_and_pictures(run):
    done = subprocess.run([sys.executable, "-m", "tools.layer_stats", "--maxes", str(run / find.MAXES_FILE),
                           "--layers", "conv2,fc", "--bins", "9", "--order", "cluster", "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for layer in ["conv2", "fc"]:
        folder = run / stats.STATS_DIR / folder_name(layer)
        arrays = read_npz(folder / "stats.npz")
        assert arrays["counts"].shape == (arrays["correlation"].shape[0], 9)
        assert sorted(arrays["order"].tolist()) == list(range(arrays["correlation"].shape[0]))
        for name in ["histograms.png", "inactivity.png", "correlation.png"]:
            image = cv2.imread(str(folder / name))
            assert image is not None and image.shape[0] > 100 and image.std() > 10
        matrix = cv2.cvtColor(cv2.imread(str(folder / "correlation.png"))[-600:, :600], cv2.COLOR_BGR2GRAY)
        low, high = np.percentile(matrix, [1, 99])
        assert high - low > 100, f"{layer}: correlation.png's matrix is nearly flat ({low:.0f}-{high:.0f})"


def test_pictures_are_bgr_images():
    correlation = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    image = stats.correlation_image(correlation, np.array([2, 0, 1]))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    # under its title, the picture the app's "activation correlation" shows
    np.testing.assert_array_equal(image[-600:], filters.correlation_image(correlation, 600, order=[2, 0, 1]))
    edges = np.linspace(0, 1, 4)[None].repeat(2, axis=0)
    histograms = stats.histograms_image(edges, np.array([[1, 2, 3], [0, 0, 6]]), np.array([0.0, 100.0]))
    assert histograms.dtype == np.uint8 and histograms.shape[2] == 3


def test_refuses_unknown_layers_and_runs_without_statistics(run, tmp_path):
    with pytest.raises(DeepVisError, match="layer nope: not scored"):
        stats.layer_stats(run / find.MAXES_FILE, ["nope"], progress=False)
    with pytest.raises(DeepVisError, match="no such file"):
        stats.layer_stats(tmp_path / "maxes.json", progress=False)
    with pytest.raises(DeepVisError, match="not one of"):
        stats.correlation_order(np.eye(4), "random")


def test_a_restart_keeps_the_layers_written_with_the_same_source(run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns(stats.STATS_DIR))
    first = stats.layer_stats(out / find.MAXES_FILE, bins=5, order="pca", progress=False)
    (out / stats.STATS_DIR / folder_name("conv2") / "stats.npz").unlink()   # killed before conv2's arrays
    computed = []
    compute_layer = stats.compute_layer
    monkeypatch.setattr(stats, "compute_layer", lambda *args, **kwargs: computed.append(args[3]) or
                        compute_layer(*args, **kwargs))
    again = stats.layer_stats(out / find.MAXES_FILE, bins=5, order="pca", progress=False)
    assert computed == ["conv2"]
    for layer in LAYERS:
        for field in first[layer].__dataclass_fields__:
            assert np.array_equal(getattr(again[layer], field), getattr(first[layer], field)), (layer, field)
    stats.layer_stats(out / find.MAXES_FILE, bins=6, order="pca", progress=False)   # other options: all again
    assert computed == ["conv2"] + LAYERS
