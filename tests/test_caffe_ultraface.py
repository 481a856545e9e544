"""The UltraFace Caffe nets, converted by us, compute what the UltraFace ONNX files compute: the
class scores and the raw box regressions (before prior decoding), at batch 2."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.net.caffe import convert
from app.net.sessions import session_options
from app.net.onnx_graph import runnable

NETS = {
    "rfb320": ("ultraface_rfb320_caffe/RFB-320", "onnx_ultraface_rfb320/version-RFB-320.onnx"),
    "slim320": ("ultraface_slim320_caffe/slim-320", "onnx_ultraface_slim320/version-slim-320.onnx"),
}


def run(model: onnx.ModelProto, x: np.ndarray, outputs: list) -> list:
    session = ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
    return session.run(outputs, {session.get_inputs()[0].name: x})


def raw_boxes_tensor(model: onnx.ModelProto) -> str:
    """The first Concat the box decoding slices: all heads' regressions, not yet decoded."""
    nodes = model.graph.node
    sliced = {node.input[0] for node in nodes if node.op_type == "Slice"}
    return next(node.output[0] for node in nodes if node.op_type == "Concat" and node.output[0] in sliced)


@pytest.mark.parametrize("name", sorted(NETS))
def test_converted_ultraface_equals_the_onnx_release(testdata, name):
    caffe, onnx_file = NETS[name]
    ours = convert(testdata / f"{caffe}.prototxt", testdata / f"{caffe}.caffemodel")
    theirs = runnable(onnx.load(str(testdata / onnx_file)))
    raw_boxes = raw_boxes_tensor(theirs)
    theirs.graph.output.add().name = raw_boxes
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 240, 320)).astype(np.float32)
    our_scores, our_boxes = run(ours, x, ["scores", "boxes"])
    their_scores, their_boxes = run(theirs, x, ["scores", raw_boxes])
    assert our_scores.shape == their_scores.shape == (2, 4420, 2)
    assert our_boxes.shape == their_boxes.shape == (2, 4420, 4)
    np.testing.assert_allclose(our_scores, their_scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(our_boxes, their_boxes, rtol=1e-4, atol=1e-4)
    assert not np.allclose(our_scores[0], our_scores[1])  # the batch axis really carries two inputs
