"""Deploy-only Caffe prototxts: seeded random weights in memory and in the cached ONNX only, in the
app (--random-weights, a red banner) and the tools (receptive fields from the prototxt alone)."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.net import Net
from app.net.spec import resolve
from tools import receptive_field as receptive_field_tool

ROOT = Path(__file__).resolve().parents[1]
SQUEEZENET = "squeezenet_v1_1_deploy/deploy.prototxt"   # no caffemodel; 5 MB of weights


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_prototxt_alone_is_refused_naming_random_weights(testdata):
    with pytest.raises(DeepVisError, match="--random-weights SEED"):
        resolve(str(testdata / SQUEEZENET))
    with pytest.raises(DeepVisError, match="Caffe prototxts only"):
        resolve(str(testdata / "onnx_mnist8/mnist-8.onnx"), random_weights=0)


def test_random_weights_are_seeded_and_kept_in_the_cached_onnx_only(testdata, cache):
    image = np.random.default_rng(1).integers(0, 255, (227, 227, 3), np.uint8)
    first = Net.load(str(testdata / SQUEEZENET), provider="cpu", random_weights=3)
    assert first.spec.random_weights_seed == 3
    logits = first.forward([image])["conv10"].copy()
    again = Net.load(str(testdata / SQUEEZENET), provider="cpu", random_weights=3).forward([image])["conv10"]
    other = Net.load(str(testdata / SQUEEZENET), provider="cpu", random_weights=4).forward([image])["conv10"]
    assert np.isfinite(logits).all() and logits.std() > 0
    np.testing.assert_array_equal(logits, again)
    assert not np.allclose(logits, other)
    written = sorted(path.suffix for path in cache.rglob("*") if path.is_file())
    assert written == [".onnx", ".onnx"]                                   # one per seed, no caffemodel
    assert not list((testdata / SQUEEZENET).parent.glob("*.caffemodel"))
    trained = Net.load(str(testdata / "mtcnn_onet/det3.prototxt"), provider="cpu", random_weights=0)
    assert trained.spec.random_weights_seed == 0 and "weights" not in trained.spec.source["caffe"]


def test_receptive_fields_from_a_prototxt_alone(testdata, cache, capsys):
    receptive_field_tool.main(["--model", str(testdata / SQUEEZENET)])
    lines = capsys.readouterr().out.splitlines()
    fields = {line.split()[0]: line.split()[-3:] for line in lines[2:]}
    assert fields["conv1"] == ["3", "2", "0"] and fields["pool1"] == ["7", "4", "0"]   # 3x3/2 conv, 3x3/2 pool
    assert not [path for path in cache.rglob("*.caffemodel")]


def test_the_window_says_the_weights_are_random(testdata, cache, tmp_path):
    out = tmp_path / "random.png"
    subprocess.run([sys.executable, str(ROOT / "run_toolbox.py"), "--cpu", "--model", str(testdata / SQUEEZENET),
                    "--random-weights", "7", "--screenshot", str(out)], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "DEEPVIS_CACHE": str(cache)})
    input_pane = cv2.imread(str(out))[:300, :300].astype(int)
    band = input_pane[:40]
    red = (band[..., 2] > 150) & (band[..., 0] < 60) & (band[..., 1] < 60)
    white = band.min(axis=2) > 200
    assert red.mean() > 0.6 and white.mean() > 0.03                       # a red band with white text
    refused = subprocess.run([sys.executable, str(ROOT / "run_toolbox.py"), "--cpu", "--model",
                              str(testdata / SQUEEZENET), "--screenshot", str(out)], cwd=ROOT, capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "--random-weights SEED" in refused.stderr
