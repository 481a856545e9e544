"""Tiny ONNX nets with known weights for the views' tests (built with onnx.helper, saved to a folder)."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.net import Net

PLAIN_INPUT = dict(mean=0.0, input_scale=1.0, raw_scale=255.0, channel_swap=[2, 1, 0])


def _save(nodes, weights: dict, input_shape, output: str, path) -> str:
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, *input_shape])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def region_net(folder, size: int = 32, regions=((8, 16, 20, 28), (0, 4, 0, 4))) -> Net:
    """Layer "score" (len(regions) x 1 x 1): unit k sums the pixels of regions[k] = (y0, y1, x0, x1)
    over all channels and nothing else (a Conv whose kernel covers the image, zero outside)."""
    kernel = np.zeros((len(regions), 3, size, size), np.float32)
    for unit, (y0, y1, x0, x1) in enumerate(regions):
        kernel[unit, :, y0:y1, x0:x1] = 1.0
    nodes = [helper.make_node("Conv", ["data", "k"], ["score"])]
    path = _save(nodes, {"k": kernel}, (3, size, size), "score", folder / "region.onnx")
    return Net.load(path, provider="cpu", input=PLAIN_INPUT)


def small_cnn(folder, seed: int = 0) -> Net:
    """data 3x16x16 -> conv1 (4x3x5x5, pad 2) -> relu1 -> conv2 (6x4x3x3) -> relu2 -> pool (GAP)
    -> flat -> fc (Gemm transB, 5 units) -> prob (Softmax). Random weights from ``seed``."""
    rng = np.random.default_rng(seed)
    weights = {"w1": rng.normal(0, 0.3, (4, 3, 5, 5)), "b1": rng.normal(0, 0.1, 4),
               "w2": rng.normal(0, 0.3, (6, 4, 3, 3)), "b2": rng.normal(0, 0.1, 6),
               "wf": rng.normal(0, 0.5, (5, 6)), "bf": rng.normal(0, 0.1, 5)}
    nodes = [helper.make_node("Conv", ["data", "w1", "b1"], ["conv1"], pads=[2, 2, 2, 2]),
             helper.make_node("Relu", ["conv1"], ["relu1"]),
             helper.make_node("Conv", ["relu1", "w2", "b2"], ["conv2"]),
             helper.make_node("Relu", ["conv2"], ["relu2"]),
             helper.make_node("GlobalAveragePool", ["relu2"], ["pool"]),
             helper.make_node("Flatten", ["pool"], ["flat"]),
             helper.make_node("Gemm", ["flat", "wf", "bf"], ["fc"], transB=1),
             helper.make_node("Softmax", ["fc"], ["prob"])]
    path = _save(nodes, weights, (3, 16, 16), "prob", folder / f"small_cnn_{seed}.onnx")
    return Net.load(path, provider="cpu", input=PLAIN_INPUT)
