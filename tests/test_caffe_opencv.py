"""Every layer of the converted Caffe nets agrees with OpenCV's own Caffe importer: each Caffe layer
the converted model lists is compared."""
import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.net.caffe import convert
from app.net.onnx_graph import declared_layers

TRAINED = {
    "lenet_mnist": ("lenet.prototxt", "lenet_iter_10000.caffemodel"),
    "cifar10_quick": ("cifar10_quick.prototxt", "cifar10_quick_iter_5000.caffemodel"),
    "cifar10_full": ("cifar10_full.prototxt", "cifar10_full_iter_70000.caffemodel"),
    "mtcnn_pnet": ("det1.prototxt", "det1.caffemodel"),
    "mtcnn_rnet": ("det2.prototxt", "det2.caffemodel"),
    "mtcnn_onet": ("det3.prototxt", "det3.caffemodel"),
    "mtcnn_lnet": ("det4.prototxt", "det4.caffemodel"),
    "ultraface_rfb320_caffe": ("RFB-320.prototxt", "RFB-320.caffemodel"),
    "ultraface_slim320_caffe": ("slim-320.prototxt", "slim-320.caffemodel"),
}
# OpenCV answers for a layer's name with its first top only: LNet's Slice tops go unchecked
NOT_IN_OPENCV = {"mtcnn_lnet": {f"data24{i}" for i in range(1, 6)}}


def every_tensor(model: onnx.ModelProto, x: np.ndarray) -> dict:
    """Run the model on x with every node output exposed: tensor name -> array."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    known = {output.name for output in exposed.graph.output}
    for node in exposed.graph.node:
        for name in node.output:
            if name not in known:
                exposed.graph.output.add().name = name
    session = ort.InferenceSession(exposed.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))


def opencv_layers(prototxt, caffemodel, x: np.ndarray, wanted) -> dict:
    """OpenCV's output for x of each of its layers named in `wanted` (fusion off: every layer apart)."""
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.enableFusion(False)
    names = [name for name in net.getLayerNames() if name in wanted]
    net.setInput(x)
    return dict(zip(names, net.forward(names)))


def random_input(model: onnx.ModelProto, seed: int) -> np.ndarray:
    """A batch of one, uniform in [-1, 1], of the model's input shape."""
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    return np.random.default_rng(seed).uniform(-1, 1, [1] + shape).astype(np.float32)


def compare_with_opencv(model: onnx.ModelProto, prototxt, caffemodel, x: np.ndarray) -> dict:
    """Assert every layer OpenCV knows matches ours (max|a-b|/max|b| < 1e-4); their shapes by name."""
    ours = every_tensor(model, x)
    reference = opencv_layers(prototxt, caffemodel, x, ours)
    for name, expected in reference.items():
        found = ours[name].reshape(expected.shape)
        error = np.abs(found - expected).max() / max(np.abs(expected).max(), 1e-12)
        assert error < 1e-4, f"{prototxt.name}: layer {name}: relative error {error:.2e}"
    return {name: expected.shape for name, expected in reference.items()}


@pytest.mark.parametrize("folder", sorted(TRAINED))
def test_trained_net_matches_opencv(testdata, folder):
    prototxt, caffemodel = (testdata / folder / name for name in TRAINED[folder])
    model = convert(prototxt, caffemodel)
    compared = compare_with_opencv(model, prototxt, caffemodel, random_input(model, 0))
    assert set(compared) == declared_layers(model) - NOT_IN_OPENCV.get(folder, set())


def test_lrn_k_follows_caffe_where_opencv_does_not(tmp_path):
    """OpenCV takes k = 1 whatever the file says: Caffe's formula is the oracle here."""
    prototxt = tmp_path / "lrn.prototxt"
    prototxt.write_text('input: "data" input_shape { dim: 1 dim: 7 dim: 3 dim: 4 }\n'
                        'layer { name: "norm" type: "LRN" bottom: "data" top: "norm"\n'
                        '        lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }\n')
    model = convert(prototxt, None)
    x = random_input(model, 3) * 4
    padded = np.pad(x ** 2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    window_sums = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    expected = x / (2 + 0.5 / 3 * window_sums) ** 0.75
    np.testing.assert_allclose(every_tensor(model, x)["norm"], expected, rtol=1e-5)
