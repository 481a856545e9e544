"""The backward rules of rules.py written as ONNX nodes, for the graph backward (graph_backward.py).

A rule here takes the Recorder and an ``Op`` whose ``dys`` are the *names* of the output diffs
(its ``inputs`` and ``outputs`` still hold the forward values of one run: shapes and constant
operands such as Clip's bounds are read from them) and returns the names of its input diffs.
Each row computes what the NumPy rule of the same op type computes; tests/test_graph_backward.py
holds every row to it. An op type absent here (or a case a row refuses with CannotRecord) makes the
pass of that (layer, mode) run in NumPy.

The modes override the rectifier rows exactly as modes.py does. Rectifier masks read the forward
output y rather than x (y > 0 iff x > 0 for Relu; low < y < high iff low < x < high for Clip), so
ONNX Runtime may still fuse a convolution with the rectifier that follows it.
"""
from functools import lru_cache

import numpy as np

from app.net.autodiff import linear
from app.net.autodiff.elementwise import clip_bounds
from app.net.autodiff.geometry import Windows
from app.net.autodiff.modes import rectifies, with_mode
from app.net.autodiff.op import Op
from app.net.autodiff.pooling import divisors
from app.net.autodiff.recorder import UNIT, CannotRecord, Recorder


def _transposed(windows: Windows) -> dict:
    """ConvTranspose attributes that undo a window geometry exactly: output i of the sliding window
    goes back to input position i * stride + tap * dilation - pad, and the result is the input's size
    (the rows no window reached, at the end, come from output_padding)."""
    ends, extra = [], []
    for size, begin, out, stride, kernel, dilation in zip(windows.size, windows.begins, windows.out, windows.strides,
                                                         windows.kernel, windows.dilations):
        end = (out - 1) * stride + (kernel - 1) * dilation + 1 - begin - size
        ends.append(max(end, 0))
        extra.append(max(-end, 0))
    return dict(kernel_shape=list(windows.kernel), strides=list(windows.strides), dilations=list(windows.dilations),
                pads=list(windows.begins) + ends, output_padding=extra)


def _dy(b: Recorder, op: Op) -> str:
    """The diff of the first output (zeros when diffs reached only other outputs)."""
    return op.dys[0] if op.dys[0] is not None else b.zeros_like(op.node.output[0])


def _only_first_input(op: Op) -> None:
    if any(op.wants[1:]):
        raise CannotRecord(f"{op.node.op_type} with a diff to its weights or second input")


def conv(b: Recorder, op: Op):
    _only_first_input(op)
    x, w = op.inputs[:2]
    group = op.attrs.get("group", 1)
    windows = Windows.of(op.attrs, x.shape[2:], w.shape[2:], op.y.shape[2:])
    if op.seeded:
        return [_one_unit_input_diff(b, op, windows, group)]
    as_conv = _input_diff_as_conv(b, _dy(b, op), op.node.input[1], w.shape, windows, group)
    if as_conv is not None:
        return [as_conv]
    return [b.node("ConvTranspose", [_dy(b, op), op.node.input[1]], group=group, **_transposed(windows))]


def _one_unit_input_diff(b: Recorder, op: Op, windows: Windows, group: int) -> str:
    """The transposed convolution of a seed whose one non-zero channel is UNIT: that channel and its
    filter alone (1 / C_out of the product, as the NumPy rule's live channels), the result padded
    into its group's input channels."""
    channels, group_channels = op.x.shape[1], op.inputs[1].shape[1]
    dy = b.node("Gather", [op.dys[0], UNIT], axis=1)
    part = b.node("ConvTranspose", [dy, b.node("Gather", [op.node.input[1], UNIT], axis=0)], **_transposed(windows))
    if group_channels == channels:
        return part
    before = b.node("Mul", [b.node("Div", [UNIT, b.ints([op.y.shape[1] // group])]), b.ints([group_channels])])
    after = b.node("Sub", [b.ints([channels - group_channels]), before])
    spatial = b.ints([0] * len(windows.kernel))
    pads = b.node("Concat", [b.ints([0]), before, spatial, b.ints([0]), after, spatial], axis=0)
    return b.node("Pad", [part, pads])


def _input_diff_as_conv(b: Recorder, dy: str, w: str, shape: tuple, windows: Windows, group: int):
    """A stride-1 convolution's transposed convolution as a Conv with each group's filters
    transposed and flipped: ONNX Runtime runs Conv on its fast paths, ConvTranspose as a product
    and a col2im (1.1-1.5x slower on 3x3 and 5x5 kernels, and one small product per group: 5-10x
    for depthwise). None when strided (the polyphase form, s * s Convs interleaved by
    DepthToSpace, took 1.5-4x ConvTranspose's time: the interleave alone cost more) or when the
    geometry would need negative pads."""
    if any(s > 1 for s in windows.strides):
        return None
    begins = [(kernel - 1) * dilation - begin
              for begin, kernel, dilation in zip(windows.begins, windows.kernel, windows.dilations)]
    ends = [size - out + begin for size, begin, out in zip(windows.size, windows.begins, windows.out)]
    if min(begins + ends) < 0:
        return None
    return b.node("Conv", [dy, _transposed_flipped(b, w, shape, group)], pads=begins + ends,
                  dilations=list(windows.dilations), group=group)


def _transposed_flipped(b: Recorder, w: str, shape: tuple, group: int) -> str:
    """The weights of that Conv: each group's filters transposed (C_in x C_out / group) and flipped
    along every spatial axis; ONNX Runtime computes them once, from the net's weights, when it makes
    the session (constant folding)."""
    rank = len(shape) - 2
    if group == 1:
        w = b.node("Transpose", [w], perm=[1, 0] + list(range(2, 2 + rank)))
    elif shape[0] != group or shape[1] != 1:   # depthwise filters are their own transpose
        spatial = list(shape[2:])
        c_out, c_in = shape[0], shape[1] * group
        grouped = b.node("Reshape", [w, b.ints([group, c_out // group, shape[1]] + spatial)])
        swapped = b.node("Transpose", [grouped], perm=[0, 2, 1] + list(range(3, 3 + rank)))
        w = b.node("Reshape", [swapped, b.ints([c_in, c_out // group] + spatial)])
    if all(k == 1 for k in shape[2:]):
        return w
    return b.node("Slice", [w, b.ints([-1] * rank), b.ints([-2 ** 62] * rank), b.ints(list(range(2, 2 + rank))),
                            b.ints([-1] * rank)])


def max_pool(b: Recorder, op: Op):
    """ONNX Runtime's indices (the first maximum of each window, as the NumPy rule's switches) route
    each output's diff; ScatterElements adds where overlapping windows share a switch."""
    if len(op.node.output) > 1 or op.attrs.get("storage_order", 0):
        raise CannotRecord("MaxPool with its own indices output")
    _, indices = b.node("MaxPool", [op.node.input[0]], outputs=2, **op.attrs)
    flat = b.node("Reshape", [b.zeros_like(op.node.input[0]), b.ints([-1])])
    routed = b.node("ScatterElements", [flat, b.node("Reshape", [indices, b.ints([-1])]),
                                        b.node("Reshape", [_dy(b, op), b.ints([-1])])], axis=0, reduction="add")
    return [b.like(routed, op.node.input[0])]


def average_pool(b: Recorder, op: Op):
    """Each output's share (its diff over the count it averaged) spread back over its window: a
    depthwise ConvTranspose with a kernel of ones."""
    x, y = op.x, op.y
    kernel = op.attrs["kernel_shape"]
    windows = Windows.of(op.attrs, x.shape[2:], kernel, y.shape[2:])
    share = b.node("Mul", [_dy(b, op), b.constant(1.0 / divisors(windows, op.attrs.get("count_include_pad", 0)))])
    ones = b.constant(np.ones((x.shape[1], 1) + tuple(kernel)))
    return [b.node("ConvTranspose", [share, ones], group=x.shape[1], **_transposed(windows))]


def global_average_pool(b: Recorder, op: Op):
    count = int(np.prod(op.x.shape[2:]))
    return [b.node("Expand", [b.scaled(_dy(b, op), 1.0 / count), b.node("Shape", [op.node.input[0]])])]


def lrn(b: Recorder, op: Op):
    """The rule of pooling.lrn; its sums over windows of channels are a Conv of ones along the channel
    axis of the map given a unit axis."""
    if op.x.ndim < 3:
        raise CannotRecord("LRN on a tensor without spatial axes")
    x, y, dy = op.node.input[0], op.node.output[0], _dy(b, op)
    size = op.attrs["size"]
    alpha, beta, bias = op.attrs.get("alpha", 1e-4), op.attrs.get("beta", 0.75), op.attrs.get("bias", 1.0)
    before, after = (size - 1) // 2, size // 2
    rank = op.x.ndim

    def window_sum(values: str, first: int, last: int) -> str:
        ones = b.constant(np.ones((1, 1, size) + (1,) * (rank - 2)))
        pads = [first] + [0] * (rank - 2) + [last] + [0] * (rank - 2)
        return b.squeeze(b.node("Conv", [b.unsqueeze(values, [1]), ones], pads=pads), [1])

    scale = b.node("Add", [b.scaled(window_sum(b.node("Mul", [x, x]), before, after), alpha / size),
                           b.constant(bias)])
    spread = window_sum(b.node("Div", [b.node("Mul", [dy, y]), scale]), after, before)
    direct = b.node("Mul", [dy, b.node("Pow", [scale, b.constant(-beta)])])
    return [b.node("Sub", [direct, b.scaled(b.node("Mul", [x, spread]), 2 * alpha * beta / size)])]


def lrn_passthrough(b: Recorder, op: Op):
    return [_dy(b, op)]


def gemm(b: Recorder, op: Op):
    """dA = alpha * dY B'^T, a Gemm itself."""
    _only_first_input(op)
    if op.attrs.get("transA", 0):
        raise CannotRecord("Gemm with transA")
    return [b.node("Gemm", [_dy(b, op), op.node.input[1]], alpha=float(op.attrs.get("alpha", 1.0)),
                   transB=1 - op.attrs.get("transB", 0))]


def matmul(b: Recorder, op: Op):
    _only_first_input(op)
    if op.inputs[0].ndim < 2 or op.inputs[1].ndim != 2:
        raise CannotRecord("MatMul of a vector or a batch of matrices on the right")
    return [b.node("MatMul", [_dy(b, op), b.node("Transpose", [op.node.input[1]])])]


def batch_normalization(b: Recorder, op: Op):
    """A per-channel gain (the NumPy rule's, applied to a unit diff): the statistics are constants."""
    _only_first_input(op)
    unit = np.ones((1, op.x.shape[1]) + (1,) * (op.x.ndim - 2), np.float32)
    return [b.node("Mul", [_dy(b, op), b.constant(linear.batch_normalization(op.with_dy(unit))[0])])]


def softmax(b: Recorder, op: Op):
    """dx = y * (dy - sum(dy * y)) along the axis (before opset 13: on the tensor flattened to 2-D
    at ``axis``, as linear.softmax)."""
    y, dy = op.node.output[0], _dy(b, op)
    if op.opset < 13:
        axis = op.attrs.get("axis", 1) % op.x.ndim
        y, dy = b.node("Flatten", [y], axis=axis), b.node("Flatten", [dy], axis=axis)
        total = b.node("ReduceSum", [b.node("Mul", [dy, y]), b.ints([1])], keepdims=1)
        return [b.like(b.node("Mul", [y, b.node("Sub", [dy, total])]), op.node.input[0])]
    total = b.node("ReduceSum", [b.node("Mul", [dy, y]), b.ints([op.attrs.get("axis", -1)])], keepdims=1)
    return [b.node("Mul", [y, b.node("Sub", [dy, total])])]


def relu(b: Recorder, op: Op):
    return [b.masked(_relu_gate(b, op), _dy(b, op))]


def clip(b: Recorder, op: Op):
    return [b.masked(_clip_gate(b, op), _dy(b, op))]


def _relu_gate(b: Recorder, op: Op) -> str:
    return b.node("Greater", [op.node.output[0], b.constant(0.0)])


def _clip_gate(b: Recorder, op: Op) -> str:
    low, high = (np.asarray(bound, np.float32) for bound in clip_bounds(op))
    if low.size != 1 or high.size != 1:
        raise CannotRecord("Clip with bounds that are not scalars")
    y = op.node.output[0]
    return b.node("And", [b.node("Greater", [y, b.constant(low.reshape(()))]),
                          b.node("Less", [y, b.constant(high.reshape(()))])])


def add(b: Recorder, op: Op):
    return [b.unbroadcast(_dy(b, op), op.y.shape, value.shape) if want else None
            for value, want in zip(op.inputs, op.wants)]


def sub(b: Recorder, op: Op):
    a, c = op.inputs[:2]
    return [b.unbroadcast(_dy(b, op), op.y.shape, a.shape) if op.wants[0] else None,
            b.unbroadcast(b.node("Neg", [_dy(b, op)]), op.y.shape, c.shape) if op.wants[1] else None]


def mul(b: Recorder, op: Op):
    a, c = op.inputs[:2]
    return [b.unbroadcast(b.node("Mul", [_dy(b, op), op.node.input[1]]), op.y.shape, a.shape) if op.wants[0] else None,
            b.unbroadcast(b.node("Mul", [_dy(b, op), op.node.input[0]]), op.y.shape, c.shape) if op.wants[1] else None]


def mean(b: Recorder, op: Op):
    share = b.scaled(_dy(b, op), 1.0 / len(op.inputs))
    return [b.unbroadcast(share, op.y.shape, value.shape) if want else None for value, want in zip(op.inputs, op.wants)]


def reshape(b: Recorder, op: Op):
    """Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout: the diff takes the input's shape."""
    return [b.like(_dy(b, op), op.node.input[0])]


def cast(b: Recorder, op: Op):
    if op.x.dtype != op.y.dtype:
        raise CannotRecord("Cast between float types")
    return [_dy(b, op)]


def transpose(b: Recorder, op: Op):
    perm = op.attrs.get("perm") or list(range(op.x.ndim))[::-1]
    return [b.node("Transpose", [_dy(b, op)], perm=[int(p) for p in np.argsort(perm)])]


def concat(b: Recorder, op: Op):
    axis = op.attrs["axis"] % op.y.ndim
    parts = b.node("Split", [_dy(b, op), b.ints([v.shape[axis] for v in op.inputs])], outputs=len(op.inputs),
                   axis=axis)
    parts = [parts] if isinstance(parts, str) else parts
    return [part if want else None for part, want in zip(parts, op.wants)]


def split(b: Recorder, op: Op):
    diffs = [dy if dy is not None else b.zeros_like(name) for dy, name in zip(op.dys, op.node.output)]
    return [b.node("Concat", diffs, axis=op.attrs.get("axis", 0))]


RULES = {
    "Conv": conv,
    "MaxPool": max_pool,
    "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool,
    "LRN": lrn,
    "Gemm": gemm,
    "MatMul": matmul,
    "BatchNormalization": batch_normalization,
    "Softmax": softmax,
    "Relu": relu,
    "Clip": clip,
    "Add": add,
    "Sum": add,
    "Sub": sub,
    "Mul": mul,
    "Mean": mean,
    "Cast": cast,
    "Reshape": reshape,
    "Flatten": reshape,
    "Squeeze": reshape,
    "Unsqueeze": reshape,
    "Identity": reshape,
    "Dropout": reshape,
    "Transpose": transpose,
    "Concat": concat,
    "Split": split,
}

GATES = {"Relu": _relu_gate, "Clip": _clip_gate}  # rectifiers whose gradient is a 0/1 gate


def _deconv(rule, b: Recorder, op: Op):
    return [b.node("Relu", [_dy(b, op)])] if rectifies(op) else rule(b, op)


def _guided(rule, b: Recorder, op: Op):
    if not rectifies(op):
        return rule(b, op)
    gate = GATES.get(op.node.op_type)
    if gate is None:
        raise CannotRecord(f"guided backprop through {op.node.op_type}")
    return [b.masked(gate(b, op), b.node("Relu", [_dy(b, op)]))]


def _desalinet(rule, b: Recorder, op: Op):
    if not rectifies(op):
        return rule(b, op)
    return [b.masked(_relu_gate(b, op), b.node("Relu", [_dy(b, op)]))]


_RECTIFIER_RULE = {"deconv": _deconv, "guided": _guided, "desalinet": _desalinet}


@lru_cache(maxsize=None)
def rules_for(mode: str, passthrough: bool = False) -> dict:
    """The graph rule table of a mode: the vanilla table with the mode's rows replaced (modes.py);
    passthrough: LRN passes its diff unchanged (the lrn_passthrough option)."""
    return with_mode(RULES, _RECTIFIER_RULE, mode, lrn_passthrough if passthrough else None)
