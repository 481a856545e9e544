"""Net.load of a Caffe pair: the trained CIFAR-10 net classifies its samples, the conversion is
cached by content, and Caffe mean files read back."""
import numpy as np
import pytest

from app.net import Net
from app.net.caffe import convert_cached, read_mean_binaryproto, schema
from app.net.preprocess import read_image

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture
def cifar10_quick(testdata, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    folder = testdata / "cifar10_quick"
    return folder, folder / "cifar10_quick.prototxt", folder / "cifar10_quick_iter_5000.caffemodel"


def test_cifar10_quick_classifies_its_samples(cifar10_quick):
    folder, prototxt, caffemodel = cifar10_quick
    net = Net.load((prototxt, caffemodel), provider="cpu",
                   input=dict(channel_swap=[0, 1, 2], raw_scale=255, mean=[128, 128, 128]))
    names = ["cat", "dog", "truck"]
    probabilities = net.forward([read_image(folder / f"{name}10.png") for name in names])["prob"]
    assert [CIFAR10_CLASSES[i] for i in probabilities.argmax(axis=1)] == names
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_conversion_is_cached_by_content(cifar10_quick, tmp_path):
    _, prototxt, caffemodel = cifar10_quick
    first = convert_cached(prototxt, caffemodel)
    assert first.is_relative_to(tmp_path / "cache")
    written = first.stat().st_mtime_ns
    second = convert_cached(prototxt, caffemodel)
    assert second == first and second.stat().st_mtime_ns == written
    assert convert_cached(prototxt, caffemodel, input_shape=(1, 3, 32, 32)) != first


def test_mean_binaryproto_reads_back(tmp_path):
    mean = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    current = schema.BlobProto()
    current.shape.dim.extend((1, 3, 4, 5))
    current.data = mean.astype("<f4").tobytes()
    (tmp_path / "current.binaryproto").write_bytes(current.SerializeToString())
    legacy = schema.BlobProto(num=1, channels=3, height=4, width=5, data=mean.astype("<f4").tobytes())
    (tmp_path / "legacy.binaryproto").write_bytes(legacy.SerializeToString())
    for name in ("current", "legacy"):
        np.testing.assert_array_equal(read_mean_binaryproto(tmp_path / f"{name}.binaryproto"), mean)
