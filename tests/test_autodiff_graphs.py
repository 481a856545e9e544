"""Small composite graphs the autodiff tests share (no tests here): a CaffeNet-shaped miniature with
LRN and ceil-mode pooling, a residual block, an inception block, a depthwise-separable block and an
encoder-decoder that upsamples."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from test_autodiff_support import make_model


class GraphBuilder:
    """Nodes and random weights (scaled by fan-in) around one image input named "data"."""

    def __init__(self, input_shape: tuple, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.input_shape = tuple(input_shape)
        self.nodes, self.weights = [], {}

    def weight(self, name: str, shape: tuple, fan_in: int = None) -> str:
        fan_in = fan_in or int(np.prod(shape[1:])) or 1
        self.weights[name] = self.rng.normal(0, 1.5 / np.sqrt(fan_in), shape).astype(np.float32)
        return name

    def constant(self, name: str, value) -> str:
        self.weights[name] = np.asarray(value)
        return name

    def node(self, op_type: str, inputs: list, output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=f"{output}_node", **attrs))
        return output

    def conv(self, x: str, name: str, c_in: int, c_out: int, kernel: int, group: int = 1, **attrs) -> str:
        w = self.weight(f"{name}_w", (c_out, c_in // group, kernel, kernel))
        b = self.weight(f"{name}_b", (c_out,), fan_in=4)
        return self.node("Conv", [x, w, b], name, group=group, **attrs)

    def batch_norm(self, x: str, name: str, channels: int) -> str:
        scale = self.constant(f"{name}_scale", self.rng.uniform(0.5, 1.5, channels).astype(np.float32))
        bias = self.constant(f"{name}_bias", self.rng.normal(0, 0.2, channels).astype(np.float32))
        mean = self.constant(f"{name}_mean", self.rng.normal(0, 0.2, channels).astype(np.float32))
        var = self.constant(f"{name}_var", self.rng.uniform(0.5, 2, channels).astype(np.float32))
        return self.node("BatchNormalization", [x, scale, bias, mean, var], name, epsilon=1e-3)

    def relu6(self, x: str, name: str) -> str:
        low, high = self.constant(f"{name}_low", np.float32(0)), self.constant(f"{name}_high", np.float32(6))
        return self.node("Clip", [x, low, high], name)

    def gemm(self, x: str, name: str, c_in: int, c_out: int) -> str:
        w = self.weight(f"{name}_w", (c_out, c_in))
        b = self.weight(f"{name}_b", (c_out,), fan_in=4)
        return self.node("Gemm", [x, w, b], name, transB=1)

    def model(self, output: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "composite",
            [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", *self.input_shape])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
            [numpy_helper.from_array(value, name) for name, value in self.weights.items()])
        return make_model(graph)


def caffenet_mini() -> onnx.ModelProto:
    """conv-relu-pool(ceil)-LRN twice (the second conv in 2 groups), conv, two fc with dropout, softmax."""
    b = GraphBuilder((3, 27, 27))
    x = b.node("Relu", [b.conv("data", "conv1", 3, 8, 5, strides=[2, 2])], "relu1")
    x = b.node("MaxPool", [x], "pool1", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    x = b.node("LRN", [x], "norm1", size=5, alpha=0.5, beta=0.75, bias=1.0)
    x = b.node("Relu", [b.conv(x, "conv2", 8, 12, 3, group=2, pads=[1] * 4)], "relu2")
    x = b.node("MaxPool", [x], "pool2", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    x = b.node("LRN", [x], "norm2", size=5, alpha=0.5, beta=0.75, bias=1.0)
    x = b.node("Relu", [b.conv(x, "conv3", 12, 16, 3, pads=[1] * 4)], "relu3")
    x = b.node("Flatten", [x], "flat")
    x = b.node("Relu", [b.gemm(x, "fc6", 16 * 9, 10)], "relu6")
    x = b.node("Dropout", [x], "drop6")
    return b.model(b.node("Softmax", [b.gemm(x, "fc7", 10, 5)], "prob"))


def residual_block() -> onnx.ModelProto:
    """A ResNet basic block (identity shortcut) then a strided one (1x1 projection shortcut)."""
    b = GraphBuilder((3, 12, 12), seed=1)
    stem = b.node("Relu", [b.batch_norm(b.conv("data", "stem", 3, 8, 3, pads=[1] * 4), "stem_bn", 8)], "stem_relu")
    x = b.node("Relu", [b.batch_norm(b.conv(stem, "a1", 8, 8, 3, pads=[1] * 4), "a1_bn", 8)], "a1_relu")
    x = b.batch_norm(b.conv(x, "a2", 8, 8, 3, pads=[1] * 4), "a2_bn", 8)
    block = b.node("Relu", [b.node("Add", [x, stem], "a_sum")], "a_relu")
    x = b.node("Relu", [b.conv(block, "b1", 8, 16, 3, strides=[2, 2], pads=[1] * 4)], "b1_relu")
    x = b.conv(x, "b2", 16, 16, 3, pads=[1] * 4)
    shortcut = b.conv(block, "b_proj", 8, 16, 1, strides=[2, 2])
    x = b.node("Relu", [b.node("Add", [x, shortcut], "b_sum")], "b_relu")
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x], "pool")], "flat")
    return b.model(b.gemm(x, "fc", 16, 4))


def inception_block() -> onnx.ModelProto:
    """GoogLeNet-style: 1x1, 1x1-3x3, 1x1-5x5 and pool-1x1 branches concatenated, then average pooling."""
    b = GraphBuilder((3, 10, 10), seed=2)
    stem = b.node("Relu", [b.conv("data", "stem", 3, 8, 3, pads=[1] * 4)], "stem_relu")
    one = b.node("Relu", [b.conv(stem, "b1", 8, 4, 1)], "b1_relu")
    three = b.node("Relu", [b.conv(stem, "b2_reduce", 8, 4, 1)], "b2_reduce_relu")
    three = b.node("Relu", [b.conv(three, "b2", 4, 6, 3, pads=[1] * 4)], "b2_relu")
    five = b.node("Relu", [b.conv(stem, "b3_reduce", 8, 2, 1)], "b3_reduce_relu")
    five = b.node("Relu", [b.conv(five, "b3", 2, 4, 5, pads=[2] * 4)], "b3_relu")
    pool = b.node("MaxPool", [stem], "b4_pool", kernel_shape=[3, 3], pads=[1] * 4)
    pool = b.node("Relu", [b.conv(pool, "b4", 8, 3, 1)], "b4_relu")
    x = b.node("Concat", [one, three, five, pool], "mixed", axis=1)
    x = b.node("AveragePool", [x], "avg", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4, count_include_pad=0)
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x], "gap")], "flat")
    return b.model(b.gemm(x, "fc", 17, 3))


def depthwise_separable() -> onnx.ModelProto:
    """MobileNet / EfficientNet-Lite style: ReLU6 (Clip), depthwise 3x3 and 5x5, 1x1 expansions, and a
    Reshape whose shape is computed from the tensor (Shape -> Gather -> Unsqueeze -> Concat)."""
    b = GraphBuilder((3, 16, 16), seed=3)
    x = b.relu6(b.batch_norm(b.conv("data", "stem", 3, 8, 3, strides=[2, 2], pads=[1] * 4), "stem_bn", 8), "stem_relu6")
    x = b.relu6(b.batch_norm(b.conv(x, "dw1", 8, 8, 3, group=8, pads=[1] * 4), "dw1_bn", 8), "dw1_relu6")
    x = b.batch_norm(b.conv(x, "pw1", 8, 16, 1), "pw1_bn", 16)
    x = b.relu6(b.conv(x, "expand", 16, 32, 1), "expand_relu6")
    x = b.relu6(b.conv(x, "dw2", 32, 32, 5, group=32, strides=[2, 2], pads=[2] * 4), "dw2_relu6")
    x = b.conv(x, "project", 32, 8, 1)
    batch = b.node("Gather", [b.node("Shape", [x], "shape"), b.constant("zero", np.int64(0))], "batch", axis=0)
    new_shape = b.node("Concat", [b.node("Unsqueeze", [batch, b.constant("axis0", np.array([0], np.int64))], "batch1"),
                                  b.constant("rest", np.array([-1], np.int64))], "new_shape", axis=0)
    x = b.node("Reshape", [x, new_shape], "flat")
    return b.model(b.gemm(x, "fc", 8 * 16, 4))


def upsampling() -> onnx.ModelProto:
    """An encoder-decoder (FPN / U-Net style): a strided conv with instance normalisation, nearest
    Resize x2 onto a skip connection, then a bilinear Resize back to the input's size."""
    b = GraphBuilder((3, 8, 8), seed=4)
    skip = b.node("Relu", [b.conv("data", "stem", 3, 4, 3, pads=[1] * 4)], "stem_relu")
    x = b.conv(skip, "down", 4, 6, 3, strides=[2, 2], pads=[1] * 4)
    gain = b.constant("down_in_scale", b.rng.uniform(0.5, 1.5, 6).astype(np.float32))
    shift = b.constant("down_in_bias", b.rng.normal(0, 0.2, 6).astype(np.float32))
    x = b.node("Relu", [b.node("InstanceNormalization", [x, gain, shift], "down_in")], "down_relu")
    twice = b.constant("twice", np.array([1, 1, 2, 2], np.float32))
    x = b.node("Resize", [x, "", twice], "up", mode="nearest")
    x = b.node("Relu", [b.node("Add", [b.conv(x, "lateral", 6, 4, 1), skip], "merge")], "merge_relu")
    x = b.conv(x, "head", 4, 2, 3, strides=[2, 2], pads=[1] * 4)
    return b.model(b.node("Resize", [x, "", twice], "logits", mode="linear"))


COMPOSITES = {"caffenet_mini": caffenet_mini, "residual": residual_block, "inception": inception_block,
              "depthwise_separable": depthwise_separable, "upsampling": upsampling}
