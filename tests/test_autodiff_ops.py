"""Every backward rule's vanilla gradient against float64 central finite differences, one node each."""
import numpy as np
import pytest
from onnx import helper

from app.net.autodiff.op import Op
from app.net.autodiff.rules import RULES
from test_autodiff_support import check_op

R = np.random.default_rng(7)


def rand(*shape, low=None):
    values = R.standard_normal(shape)
    return np.abs(values) + low if low is not None else values


def i64(*values):
    return np.array(values, np.int64)


CONV_X = rand(2, 4, 7, 6)
CASES = {
    # convolutions: data=(0, 1, 2) checks the input, weight and bias diffs together
    "conv 3x3 pad 1": lambda: check_op("Conv", CONV_X, rand(5, 4, 3, 3), rand(5), data=(0, 1, 2),
                                       attrs=dict(pads=[1] * 4)),
    "conv groups, strides, dilations, asymmetric pads": lambda: check_op(
        "Conv", CONV_X, rand(6, 2, 3, 3), rand(6), data=(0, 1, 2),
        attrs=dict(group=2, pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2])),
    "conv depthwise": lambda: check_op("Conv", CONV_X, rand(4, 1, 3, 3), data=(0, 1),
                                       attrs=dict(group=4, pads=[1] * 4, strides=[2, 2])),
    "conv depthwise multiplier 2, 5x5": lambda: check_op("Conv", CONV_X, rand(8, 1, 5, 5), data=(0, 1),
                                                         attrs=dict(group=4, pads=[2, 2, 1, 1])),
    "conv depthwise, wide map (channels-first path)": lambda: check_op(
        "Conv", rand(1, 3, 4, 40), rand(3, 1, 3, 3), attrs=dict(group=3, pads=[1, 1, 1, 1])),
    "conv depthwise, 128 channels (gathered)": lambda: check_op(
        "Conv", rand(2, 128, 6, 7), rand(128, 1, 3, 3), attrs=dict(group=128, pads=[1, 0, 1, 1])),
    "conv depthwise, 128 channels, stride 2, 5x5, SAME pads": lambda: check_op(
        "Conv", rand(1, 128, 9, 8), rand(128, 1, 5, 5), attrs=dict(group=128, pads=[1, 2, 2, 1], strides=[2, 2])),
    "conv depthwise, 128 channels, stride 3, dilation 2": lambda: check_op(
        "Conv", rand(1, 128, 11, 10), rand(128, 1, 3, 2), attrs=dict(group=128, pads=[2, 1, 1, 0], strides=[3, 2],
                                                                  dilations=[2, 3])),
    "conv depthwise, 128 channels, 1-D, 1x1 stride 2": lambda: check_op(
        "Conv", rand(1, 128, 9), rand(128, 1, 1), attrs=dict(group=128, strides=[2])),
    "conv 1x1": lambda: check_op("Conv", CONV_X, rand(3, 4, 1, 1), data=(0, 1)),
    "conv 1x1 stride 2": lambda: check_op("Conv", CONV_X, rand(3, 4, 1, 1), attrs=dict(strides=[2, 2])),
    "conv auto_pad SAME_UPPER": lambda: check_op("Conv", CONV_X, rand(3, 4, 4, 4), data=(0, 1),
                                                 attrs=dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "conv auto_pad SAME_LOWER": lambda: check_op("Conv", CONV_X, rand(3, 4, 2, 3),
                                                 attrs=dict(auto_pad="SAME_LOWER")),
    "conv 1-D": lambda: check_op("Conv", rand(2, 3, 9), rand(4, 3, 3), data=(0, 1),
                                 attrs=dict(strides=[2], pads=[1, 0])),
    "conv transpose stride 2, pads, output_padding": lambda: check_op(
        "ConvTranspose", rand(2, 4, 4, 5), rand(4, 3, 3, 3), rand(3), data=(0, 1, 2),
        attrs=dict(strides=[2, 2], pads=[1, 0, 1, 1], output_padding=[1, 0])),
    "conv transpose groups, dilation": lambda: check_op(
        "ConvTranspose", rand(1, 4, 4, 4), rand(4, 2, 2, 3), data=(0, 1), attrs=dict(group=2, dilations=[2, 1])),
    "conv transpose output_shape": lambda: check_op(
        "ConvTranspose", rand(1, 2, 3, 3), rand(2, 2, 3, 3), attrs=dict(strides=[2, 2], output_shape=[6, 6]),
        runtime="ort"),
    "conv transpose SAME_UPPER": lambda: check_op(
        "ConvTranspose", rand(1, 2, 3, 3), rand(2, 2, 3, 3), attrs=dict(auto_pad="SAME_UPPER", strides=[2, 2]),
        runtime="ort"),
    # pooling and normalisation
    "max pool ceil mode, pads": lambda: check_op("MaxPool", rand(2, 3, 7, 7), attrs=dict(
        kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, pads=[1, 1, 0, 0])),
    "max pool 2x2 stride 2": lambda: check_op("MaxPool", rand(1, 3, 6, 8),
                                              attrs=dict(kernel_shape=[2, 2], strides=[2, 2])),
    "max pool dilation, SAME_UPPER": lambda: check_op("MaxPool", rand(1, 2, 8, 7), attrs=dict(
        kernel_shape=[2, 3], dilations=[2, 1], auto_pad="SAME_UPPER")),
    "average pool count_include_pad": lambda: check_op("AveragePool", rand(1, 2, 7, 7), attrs=dict(
        kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, pads=[1, 1, 1, 1], count_include_pad=1)),
    "average pool exclude pad": lambda: check_op("AveragePool", rand(1, 2, 7, 6), attrs=dict(
        kernel_shape=[3, 2], strides=[2, 1], ceil_mode=1, pads=[1, 0, 1, 1])),
    "global average pool": lambda: check_op("GlobalAveragePool", rand(2, 3, 4, 5)),
    "global max pool": lambda: check_op("GlobalMaxPool", rand(2, 3, 4, 5)),
    "LRN size 5": lambda: check_op("LRN", rand(2, 7, 3, 3), attrs=dict(size=5, alpha=0.1, beta=0.75, bias=2.0)),
    "LRN size 4": lambda: check_op("LRN", rand(1, 6, 2, 3), attrs=dict(size=4, alpha=0.3, beta=0.6, bias=1.0)),
    "batch normalization": lambda: check_op("BatchNormalization", rand(2, 3, 4, 4), rand(3), rand(3), rand(3),
                                            rand(3, low=0.1), attrs=dict(epsilon=1e-3)),
    "instance normalization": lambda: check_op("InstanceNormalization", rand(2, 3, 4, 5), rand(3), rand(3),
                                               data=(0, 1, 2), attrs=dict(epsilon=1e-3)),
    "layer normalization, last axis": lambda: check_op("LayerNormalization", rand(2, 3, 6), rand(6), rand(6),
                                                       data=(0, 1, 2)),
    "layer normalization axis 1, no bias": lambda: check_op("LayerNormalization", rand(2, 3, 4, 2), rand(4, 1),
                                                            data=(0, 1), attrs=dict(axis=1, epsilon=1e-3)),
    "group normalization opset 21 (per channel)": lambda: check_op(
        "GroupNormalization", rand(2, 6, 3, 4), rand(6), rand(6), data=(0, 1, 2),
        attrs=dict(num_groups=3, stash_type=11), opset=21),  # statistics in float64 (default: float32)
    "group normalization opset 18 (per group)": lambda: check_op(
        "GroupNormalization", rand(2, 6, 5), rand(2), rand(2), data=(0, 1, 2), attrs=dict(num_groups=2, epsilon=0.1),
        opset=18),
    # fully connected
    "gemm transA transB alpha beta": lambda: check_op("Gemm", rand(4, 3), rand(5, 4), rand(5), data=(0, 1, 2),
                                                      attrs=dict(transA=1, transB=1, alpha=0.7, beta=1.3)),
    "gemm": lambda: check_op("Gemm", rand(2, 4), rand(4, 5), rand(1, 5), data=(0, 1, 2)),
    "matmul batched, broadcast": lambda: check_op("MatMul", rand(2, 3, 4), rand(4, 5), data=(0, 1)),
    "matmul vectors": lambda: check_op("MatMul", rand(4), rand(2, 4, 3), data=(0, 1)),
    "softmax opset 11 (2-D coerced)": lambda: check_op("Softmax", rand(2, 3, 4), attrs=dict(axis=1), opset=11,
                                                       runtime="ort"),
    "softmax axis": lambda: check_op("Softmax", rand(2, 3, 4), attrs=dict(axis=1)),
    "log softmax": lambda: check_op("LogSoftmax", rand(2, 5)),
    "reduce mean axes attribute": lambda: check_op("ReduceMean", rand(2, 3, 4), attrs=dict(axes=[1, 2], keepdims=0)),
    "reduce mean axes input": lambda: check_op("ReduceMean", rand(2, 3, 4), i64(-1), opset=18),
    "reduce sum": lambda: check_op("ReduceSum", rand(2, 3, 4), i64(0, 2), opset=13),
    "reduce max": lambda: check_op("ReduceMax", rand(2, 3, 4), attrs=dict(axes=[1], keepdims=1)),
    # activations
    "relu": lambda: check_op("Relu", rand(2, 3, 4)),
    "leaky relu": lambda: check_op("LeakyRelu", rand(2, 3, 4), attrs=dict(alpha=0.2)),
    "prelu": lambda: check_op("PRelu", rand(2, 3, 4, 4), rand(3, 1, 1), data=(0, 1)),
    "clip (ReLU6) opset 11": lambda: check_op("Clip", 4 * rand(2, 3, 4), np.float32(0), np.float32(6)),
    "clip opset 6": lambda: check_op("Clip", 2 * rand(2, 3, 4), attrs=dict(min=-1.0, max=1.0), opset=6),
    "clip max only": lambda: check_op("Clip", 2 * rand(2, 3, 4), None, np.float32(1)),
    "elu": lambda: check_op("Elu", rand(2, 3, 4), attrs=dict(alpha=0.5)),
    "selu": lambda: check_op("Selu", rand(2, 3, 4)),
    "celu": lambda: check_op("Celu", rand(2, 3, 4), attrs=dict(alpha=2.0)),
    "thresholded relu": lambda: check_op("ThresholdedRelu", 2 * rand(2, 3, 4), attrs=dict(alpha=0.5)),
    "sigmoid": lambda: check_op("Sigmoid", rand(2, 3, 4)),
    "hard sigmoid": lambda: check_op("HardSigmoid", 4 * rand(2, 3, 4), attrs=dict(alpha=0.3)),
    "hard swish": lambda: check_op("HardSwish", 3 * rand(3, 4, 5), opset=14),
    "tanh": lambda: check_op("Tanh", rand(2, 3, 4)),
    "softplus": lambda: check_op("Softplus", rand(2, 3, 4)),
    "softsign": lambda: check_op("Softsign", rand(2, 3, 4)),
    "gelu": lambda: check_op("Gelu", 2 * rand(2, 3, 4), opset=20, runtime="ort"),  # reference: float32 constants
    "gelu tanh": lambda: check_op("Gelu", 2 * rand(2, 3, 4), attrs=dict(approximate="tanh"), opset=20),
    "erf": lambda: check_op("Erf", rand(2, 3, 4)),
    "mish": lambda: check_op("Mish", 3 * rand(2, 3, 4), opset=18),
    # arithmetic
    "add broadcast": lambda: check_op("Add", rand(2, 3, 4), rand(3, 1), data=(0, 1)),
    "sub broadcast": lambda: check_op("Sub", rand(3, 1), rand(2, 3, 4), data=(0, 1)),
    "mul broadcast": lambda: check_op("Mul", rand(2, 3, 4), rand(1, 3, 4), data=(0, 1)),
    "div broadcast": lambda: check_op("Div", rand(2, 3, 4), rand(4, low=0.5), data=(0, 1)),
    "pow": lambda: check_op("Pow", rand(2, 3, low=0.5), rand(3), data=(0, 1)),
    "sum of three": lambda: check_op("Sum", rand(2, 3), rand(3), rand(2, 1), data=(0, 1, 2)),
    "max of three, broadcast": lambda: check_op("Max", rand(2, 3), rand(3), rand(2, 1), data=(0, 1, 2)),
    "min of two": lambda: check_op("Min", rand(2, 3), rand(2, 3), data=(0, 1)),
    "mean of two": lambda: check_op("Mean", rand(2, 3), rand(3), data=(0, 1)),
    "where": lambda: check_op("Where", R.standard_normal((2, 3)) > 0, rand(2, 3), rand(3), data=(1, 2)),
    "neg": lambda: check_op("Neg", rand(2, 3)),
    "abs": lambda: check_op("Abs", rand(2, 3)),
    "exp": lambda: check_op("Exp", rand(2, 3)),
    "log": lambda: check_op("Log", rand(2, 3, low=0.2)),
    "sqrt": lambda: check_op("Sqrt", rand(2, 3, low=0.2)),
    "reciprocal": lambda: check_op("Reciprocal", rand(2, 3, low=0.5)),
    "floor": lambda: check_op("Floor", 3 * rand(2, 3)),
    "cast": lambda: check_op("Cast", rand(2, 3), attrs=dict(to=1)),
    # moving values
    "reshape": lambda: check_op("Reshape", rand(2, 3, 4), i64(2, -1, 2)),
    "flatten": lambda: check_op("Flatten", rand(2, 3, 4), attrs=dict(axis=2)),
    "squeeze": lambda: check_op("Squeeze", rand(2, 1, 4), i64(1)),
    "unsqueeze": lambda: check_op("Unsqueeze", rand(2, 4), i64(0, 3)),
    "identity": lambda: check_op("Identity", rand(2, 4)),
    "dropout": lambda: check_op("Dropout", rand(2, 4)),
    "transpose": lambda: check_op("Transpose", rand(2, 3, 4), attrs=dict(perm=[1, 2, 0])),
    "concat": lambda: check_op("Concat", rand(2, 1, 3), rand(2, 2, 3), rand(2, 4, 3), data=(0, 1, 2),
                               attrs=dict(axis=1)),
    "split": lambda: check_op("Split", rand(2, 5, 3), i64(2, 3), attrs=dict(axis=1), n_outputs=2),
    "slice steps": lambda: check_op("Slice", rand(4, 6, 5), i64(-1, 1), i64(-100, 6), i64(0, 2), i64(-2, 2)),
    "slice opset 9": lambda: check_op("Slice", rand(4, 6), attrs=dict(starts=[1], ends=[1000], axes=[1]), opset=9),
    "gather repeated indices": lambda: check_op("Gather", rand(3, 5, 2), i64(4, 0, 4, -1), attrs=dict(axis=1)),
    "expand": lambda: check_op("Expand", rand(3, 1), i64(2, 3, 4)),
    "tile": lambda: check_op("Tile", rand(2, 3), i64(2, 3)),
    "pad constant, negative": lambda: check_op("Pad", rand(2, 3, 5), i64(0, 1, -1, 0, 2, 2), runtime="ort"),
    "pad reflect": lambda: check_op("Pad", rand(1, 2, 4, 5), i64(0, 0, 3, 1, 0, 0, 2, 4), attrs=dict(mode="reflect")),
    "pad edge": lambda: check_op("Pad", rand(1, 2, 3, 3), i64(0, 0, 2, 1, 0, 0, 1, 3), attrs=dict(mode="edge")),
    "depth to space DCR": lambda: check_op("DepthToSpace", rand(2, 8, 2, 3), attrs=dict(blocksize=2)),
    "depth to space CRD": lambda: check_op("DepthToSpace", rand(1, 18, 2, 2), attrs=dict(blocksize=3, mode="CRD")),
    "space to depth": lambda: check_op("SpaceToDepth", rand(2, 3, 4, 6), attrs=dict(blocksize=2)),
    "pad wrap with axes": lambda: check_op("Pad", rand(2, 3, 4), i64(2, 5), None, i64(-1), attrs=dict(mode="wrap"),
                                           opset=19),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gradient_matches_finite_differences(case):
    CASES[case]()


@pytest.mark.parametrize("op_type, attrs", [("Gelu", {}), ("Gelu", dict(approximate="tanh")), ("Erf", {}),
                                             ("Mish", {})])
def test_activations_keep_float32(op_type, attrs):
    x = rand(2, 3).astype(np.float32)
    op = Op(helper.make_node(op_type, ["x"], ["y"]), attrs, 20, [x], [x], [np.ones_like(x)], (True,))
    assert RULES[op_type](op)[0].dtype == np.float32


DEPTHWISE_GEOMETRIES = {   # x shape, kernel, Conv attributes
    "3x3 stride 2 asymmetric pads": ((2, 96, 30, 27), (3, 3), dict(pads=[1, 0, 2, 1], strides=[2, 2])),
    "5x4 stride 1": ((1, 3, 56, 60), (5, 4), dict(pads=[2, 1, 1, 2])),
    "3x2 stride 3x2 dilation 2x3": ((1, 128, 11, 10), (3, 2), dict(pads=[2, 1, 1, 0], strides=[3, 2],
                                                                    dilations=[2, 3])),
    "5x5 stride 2 SAME_UPPER": ((1, 144, 9, 8), (5, 5), dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "1-D 1 tap stride 2": ((1, 8, 9), (1,), dict(strides=[2])),
}


@pytest.mark.parametrize("geometry", list(DEPTHWISE_GEOMETRIES))
def test_depthwise_float32_path_equals_float64_paths(geometry):
    """float32 runs ONNX Runtime's phases (ort_conv.py) in sessions made from the options handed in;
    float64, which the finite differences check, the NumPy paths."""
    from app.net.autodiff import depthwise
    from app.net.autodiff.geometry import Windows
    from app.net.sessions import session_options

    made = []
    def one_thread():
        made.append(session_options(threads=1))
        return made[-1]

    x_shape, kernel, attrs = DEPTHWISE_GEOMETRIES[geometry]
    out = conv_output_size(x_shape, kernel, attrs)
    channels = x_shape[1]
    windows = Windows.of(attrs, x_shape[2:], kernel, out)
    dy, w = rand(x_shape[0], channels, *out), rand(channels, 1, *kernel)
    expected = depthwise.input_diff(dy, w, x_shape, windows, channels)
    got = depthwise.input_diff(dy.astype(np.float32), w.astype(np.float32), x_shape, windows, channels, one_thread)
    assert got.dtype == np.float32 and got.shape == x_shape
    assert len(made) == 1 and made[0].intra_op_num_threads == 1   # its session came from the options given
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())


def conv_output_size(x_shape, kernel, attrs) -> tuple:
    """The spatial size of the Conv's output, by ONNX's formulas."""
    rank = len(kernel)
    strides, dilations = attrs.get("strides", [1] * rank), attrs.get("dilations", [1] * rank)
    if attrs.get("auto_pad") == "SAME_UPPER":
        return tuple(-(-size // stride) for size, stride in zip(x_shape[2:], strides))
    pads = attrs.get("pads", [0] * 2 * rank)
    return tuple((size + pads[i] + pads[i + rank] - dilations[i] * (k - 1) - 1) // strides[i] + 1
                 for i, (size, k) in enumerate(zip(x_shape[2:], kernel)))


def test_gated_blocks_of_a_big_batch_equal_one_pass(monkeypatch):
    from app.net.autodiff import elementwise
    dy, x = R.standard_normal((7, 3, 5, 4)), R.standard_normal((7, 3, 5, 4))
    whole = elementwise.gated(dy, x, elementwise.positive)
    monkeypatch.setattr(elementwise, "BLOCK_ELEMENTS", 2 * 3 * 5 * 4)   # blocks of two images, a short last one
    blocked = elementwise.gated(dy, x, elementwise.positive)
    assert np.array_equal(whole, dy * (x > 0)) and np.array_equal(blocked, whole)
