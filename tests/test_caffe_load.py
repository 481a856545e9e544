"""Net.load of a Caffe pair: the trained CIFAR-10 net classifies its samples, every Caffe layer is a
layer under its own name, the conversion is cached by content, and Caffe mean files read back."""
import os
import stat

import numpy as np
import onnx
import pytest

from app.errors import DeepVisError
from app.net import Net, onnx_graph
from app.net.caffe import convert, convert_cached, read_mean_binaryproto, schema
from app.net.caffe.reader import net_layers, read_prototxt
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


@pytest.mark.parametrize("folder, prototxt", [("mtcnn_lnet", "det4.prototxt"), ("mtcnn_onet", "det3.prototxt"),
                                              ("ultraface_slim320_caffe", "slim-320.prototxt")])
def test_every_caffe_layer_is_a_layer(testdata, tmp_path, monkeypatch, folder, prototxt):
    """Slice tops, Dropout, Reshape and Permute outputs too, in the prototxt's order."""
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    prototxt = testdata / folder / prototxt
    expected = [top for layer in net_layers(read_prototxt(prototxt), {}) if layer.type != "Input"
                for top in (layer.tops if len(layer.tops) > 1 else [layer.name])]
    net = Net.load(prototxt, provider="cpu")
    assert [layer.name for layer in net.layers] == expected
    assert {"Split", "Identity", "Reshape", "Transpose"} & {layer.op_type for layer in net.layers}


def test_layer_names_in_metadata_must_be_a_list(testdata):
    model = convert(testdata / "mtcnn_pnet" / "det1.prototxt", None)
    assert onnx_graph.declared_layers(model) >= {"conv1", "PReLU1", "prob1"}
    onnx.helper.set_model_props(model, {onnx_graph.LAYERS_METADATA_KEY: "conv1"})
    with pytest.raises(DeepVisError, match="not a JSON list"):
        onnx_graph.declared_layers(model)


def test_conversion_is_cached_by_content(cifar10_quick, tmp_path):
    _, prototxt, caffemodel = cifar10_quick
    previous = os.umask(0o022)
    try:
        first = convert_cached(prototxt, caffemodel)
    finally:
        os.umask(previous)
    assert first.is_relative_to(tmp_path / "cache")
    assert stat.S_IMODE(first.stat().st_mode) == 0o644   # an ordinary file, as the umask makes them
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
