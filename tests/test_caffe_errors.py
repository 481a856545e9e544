"""Bad Caffe input gives one DeepVisError line naming the file, the layer and what is wrong; and
the reader's strict parsing, scalar blobs and InnerProduct with axis > 1."""
import numpy as np
import onnxruntime as ort
import pytest

from app.errors import DeepVisError
from app.net.caffe import convert, schema
from app.net.caffe.reader import blob_array, read_prototxt

HEADER = 'name: "tiny"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
CONV = 'layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"\n  convolution_param { num_output: 4 kernel_size: 3 } }\n'


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DeepVisError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def write_weights(path, layers: dict) -> None:
    """A current-format caffemodel: layer name -> list of arrays."""
    net = schema.NetParameter()
    for name, arrays in layers.items():
        layer = net.layer.add()
        layer.name = name
        for array in arrays:
            blob = layer.blobs.add()
            blob.shape.dim.extend(array.shape)
            blob.data = np.asarray(array, "<f4").tobytes()
    path.write_bytes(net.SerializeToString())


@pytest.fixture
def tiny(tmp_path):
    """(prototxt, caffemodel) of a one-conv net with correct weights."""
    prototxt, caffemodel = tmp_path / "tiny.prototxt", tmp_path / "tiny.caffemodel"
    prototxt.write_text(HEADER + CONV)
    write_weights(caffemodel, {"conv1": [np.ones((4, 3, 3, 3)), np.zeros(4)]})
    return prototxt, caffemodel


def test_the_tiny_net_converts(tiny):
    assert convert(*tiny).graph.output[0].name == "conv1"


def test_malformed_prototxt_names_the_line(tmp_path):
    prototxt = tmp_path / "bad.prototxt"
    prototxt.write_text(HEADER + 'layer { name: "conv1" type: "Convolution"\n  bottom "data" }\n')
    message = error_of(read_prototxt, prototxt)
    assert message.startswith(f"{prototxt}: line 4,")


def test_misspelled_field_is_an_error_with_its_line(tmp_path):
    prototxt = tmp_path / "typo.prototxt"
    prototxt.write_text(HEADER + 'layer { name: "pool1" type: "Pooling" bottom: "data" top: "pool1"\n'
                        '  pooling_param { kernel_sise: 3 } }\n')
    message = error_of(read_prototxt, prototxt)
    assert message.startswith(f"{prototxt}: line 4,") and "kernel_sise" in message


def test_unknown_param_blocks_of_other_forks_are_skipped(tmp_path):
    prototxt = tmp_path / "ssd.prototxt"
    prototxt.write_text(HEADER + 'layer { name: "prior" type: "PriorBox" bottom: "data" top: "prior"\n'
                        '  prior_box_param {\n    min_size: 30.0 # a } in a comment\n    aspect_ratio: 2.0\n'
                        '  }\n}\nlayer { name: "bad" type: "ReLU" bottom: "data" top: "bad" relu_param { slope: 1 } }\n')
    message = error_of(read_prototxt, prototxt)
    assert message.startswith(f"{prototxt}: line 9,") and "slope" in message
    prototxt.write_text(prototxt.read_text().replace("slope", "negative_slope"))
    net = read_prototxt(prototxt)
    assert [layer.type for layer in net.layer] == ["Input", "PriorBox", "ReLU"]


def test_truncated_caffemodel(testdata, tmp_path):
    whole = (testdata / "cifar10_quick" / "cifar10_quick_iter_5000.caffemodel").read_bytes()
    truncated = tmp_path / "cut.caffemodel"
    truncated.write_bytes(whole[: len(whole) // 2])
    message = error_of(convert, testdata / "cifar10_quick" / "cifar10_quick.prototxt", truncated)
    assert message.startswith(str(truncated)) and "truncated" in message


def test_weight_blob_of_the_wrong_shape(tiny):
    prototxt, caffemodel = tiny
    write_weights(caffemodel, {"conv1": [np.ones((4, 3, 5, 5)), np.zeros(4)]})
    message = error_of(convert, prototxt, caffemodel)
    assert "conv1" in message and "(4, 3, 5, 5)" in message and "(4, 3, 3, 3)" in message


def test_unknown_layer_type(tiny):
    prototxt, caffemodel = tiny
    prototxt.write_text(HEADER + CONV + 'layer { name: "odd" type: "Frobnicate" bottom: "conv1" top: "odd" }\n')
    message = error_of(convert, prototxt, caffemodel)
    assert "odd" in message and "Frobnicate" in message


def test_missing_bottom_blob(tiny):
    prototxt, caffemodel = tiny
    prototxt.write_text(HEADER + CONV.replace('bottom: "data"', 'bottom: "dta"'))
    message = error_of(convert, prototxt, caffemodel)
    assert "conv1" in message and "dta" in message


def test_scalar_blob_of_the_current_format_is_not_legacy():
    blob = schema.BlobProto()
    blob.shape.SetInParent()
    blob.data = np.float32([2.5]).tobytes()
    array, legacy = blob_array(blob, "scalar")
    assert array.shape == () and float(array) == 2.5 and not legacy
    old = schema.BlobProto(num=1, channels=1, height=1, width=2, data=np.float32([1, 2]).tobytes())
    array, legacy = blob_array(old, "old")
    assert array.shape == (1, 1, 1, 2) and legacy


@pytest.mark.parametrize("transpose", [False, True])
def test_inner_product_with_axis_2_keeps_leading_axes(tmp_path, transpose):
    prototxt, caffemodel = tmp_path / "ip.prototxt", tmp_path / "ip.caffemodel"
    prototxt.write_text(HEADER + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
                        f'  inner_product_param {{ num_output: 5 axis: 2 transpose: {str(transpose).lower()} }} }}\n')
    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((5, 64)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    write_weights(caffemodel, {"ip": [weight.T if transpose else weight, bias]})
    model = convert(prototxt, caffemodel)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (output,) = session.run(["ip"], {session.get_inputs()[0].name: x})
    expected = x.reshape(2, 3, 64) @ weight.T + bias
    assert output.shape == (2, 3, 5)
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)


def test_weights_past_what_an_onnx_file_holds_are_refused_before_they_are_made(tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr("app.net.caffe.graph.MAX_MODEL_BYTES", 3000)   # three 4 x 3 x 5 x 5 blobs: 3600 bytes
    prototxt = tmp_path / "three.prototxt"
    prototxt.write_text(HEADER + "".join(CONV.replace("conv1", f"conv{i}").replace("kernel_size: 3", "kernel_size: 5")
                                         .replace("num_output: 4", "num_output: 4 bias_term: false")
                                         for i in range(3)).replace('bottom: "conv0"', 'bottom: "data"'))
    message = error_of(convert, prototxt, None, make_blob=lambda *args: made.append(args) or np.zeros(args[2], np.float32))
    assert "layer conv2 (Convolution): its weights bring the model over 3000 bytes" in message
    assert len(made) == 2   # the third blob was never made
