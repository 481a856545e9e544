"""The one table of ONNX op traits: what the toolbox needs to know about each op type.

Layer discovery (onnx_graph), the backprop modes (which ops are rectifiers), receptive fields (how
output positions read input positions, the window attributes), the weights views and weight
gradients (where a layer's weights are) and find_maxes' crop layout (which ops keep positions apart)
all read it. An op type absent from the table gets ``UNKNOWN``: not a layer, not elementwise, no
weights, mixing every position, so every reader treats it conservatively.
"""
from dataclasses import dataclass, replace

import onnx

# How an op's output positions (the spatial axes of N x C x H x W) read its inputs' positions:
POINTWISE = "pointwise"        # position (y, x) reads only (y, x) of each input (all channels maybe)
CHANNEL_AXIS = "channel_axis"  # pointwise when its ``axis`` is the channel axis (Concat, Softmax)
WINDOW = "window"              # a sliding window (kernel, strides, pads, dilations)
SHIFT = "shift"                # (y, x) reads one input position at a fixed offset (Pad)
MOVED = "moved"                # resampled, cropped or rearranged: receptive_field has a rule each
MIXED = "mixed"                # any position may read any other (global pools, Gemm, reshapes)


@dataclass(frozen=True)
class Window:
    """A windowed op's geometry, read from the standard attributes kernel_shape, strides, pads,
    dilations and auto_pad; kernel_input: the input whose shape[2:] is the kernel when kernel_shape
    is absent (a conv's weight), None for pools; transposed: ConvTranspose (the window writes)."""

    kernel_input: int = None
    transposed: bool = False


@dataclass(frozen=True)
class Trait:
    """What one op type is. weight / bias: the input index holding the float weights / bias that
    the weights views show and weight gradients differentiate (None: no such input)."""

    layer: bool = False        # its output is a layer users look at (onnx_graph.find_layers)
    elementwise: bool = False  # each output element reads the same element of each (broadcast) input
    activation: bool = False   # a unary elementwise activation: Caffe ran it in place on its input's blob
    rectifier: bool = False    # ReLU-like: the backprop modes replace its rule (autodiff/modes.py)
    keeps_units: bool = False  # output channel c is input channel c's unit: the weights search climbs it
    positions: str = MIXED     # how output positions read input positions (see above)
    window: Window = None
    weight: int = None
    bias: int = None


UNKNOWN = Trait()

_POINTWISE = Trait(elementwise=True, positions=POINTWISE)
_MERGE = replace(_POINTWISE, layer=True)
_ACTIVATION = replace(_POINTWISE, layer=True, activation=True, keeps_units=True)
_RECTIFIER = replace(_ACTIVATION, rectifier=True)
_POOL = Trait(layer=True, positions=WINDOW, window=Window())
_CONV = Trait(layer=True, positions=WINDOW, window=Window(kernel_input=1), weight=1, bias=2)
_NORM = Trait(layer=True, keeps_units=True)  # normalises over positions (instance, layer, group norms)
_RESAMPLED = Trait(layer=True, positions=MOVED)


def _each(names: str, trait: Trait) -> dict:
    return dict.fromkeys(names.split(), trait)


TRAITS = {
    # convolution and pooling
    "Conv": _CONV,
    "ConvTranspose": replace(_CONV, positions=MOVED, window=Window(kernel_input=1, transposed=True)),
    "ConvInteger": replace(_CONV, weight=None, bias=None),  # integer weights: no float weights to show
    "QLinearConv": replace(_CONV, window=Window(kernel_input=3), weight=None, bias=None),
    **_each("MaxPool AveragePool LpPool", _POOL),
    **_each("GlobalAveragePool GlobalMaxPool MaxUnpool", Trait(layer=True)),
    # fully connected
    "Gemm": Trait(layer=True, weight=1, bias=2),
    "MatMul": Trait(layer=True, weight=1),
    "MatMulInteger": Trait(layer=True),
    # rectifiers and other activations
    **_each("Relu LeakyRelu PRelu Elu Selu Celu ThresholdedRelu HardSwish Clip", _RECTIFIER),
    **_each("Sigmoid HardSigmoid Tanh Softplus Softsign Gelu Mish", _ACTIVATION),
    "Abs": replace(_POINTWISE, layer=True, keeps_units=True),
    # arithmetic and merges
    **_each("Add Sub Mul Div Sum Max Min", _MERGE),
    **_each("Neg Exp Log Sqrt Reciprocal Pow Erf Floor Ceil Round Sign Not Mean Where Equal Greater Less And Or "
            "Cast QuantizeLinear DequantizeLinear", _POINTWISE),
    "Identity": replace(_POINTWISE, keeps_units=True),
    "Dropout": replace(_POINTWISE, layer=True, keeps_units=True),
    "Concat": Trait(layer=True, positions=CHANNEL_AXIS),
    # normalisation and probabilities
    "BatchNormalization": replace(_POINTWISE, layer=True, keeps_units=True),  # at inference: per-channel affine
    "LRN": Trait(layer=True, keeps_units=True, positions=POINTWISE),  # mixes channels at one position
    **_each("InstanceNormalization LayerNormalization GroupNormalization", _NORM),
    **_each("Softmax LogSoftmax", Trait(layer=True, positions=CHANNEL_AXIS)),
    "Hardmax": Trait(positions=CHANNEL_AXIS),
    # moving positions around
    **_each("Upsample Resize DepthToSpace SpaceToDepth", _RESAMPLED),
    "Slice": Trait(positions=MOVED),
    "Pad": Trait(positions=SHIFT),
}


def trait(op_type: str) -> Trait:
    """The traits of an op type; UNKNOWN (the conservative answer) for one the table lacks."""
    return TRAITS.get(op_type, UNKNOWN)


def op_types(**facts) -> tuple:
    """The op types whose traits have all the given values, e.g. ``op_types(rectifier=True)``."""
    return tuple(op for op, traits in TRAITS.items() if all(getattr(traits, k) == v for k, v in facts.items()))


def attributes(node: onnx.NodeProto) -> dict:
    """A node's attributes by name, strings decoded."""
    values = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def reads_own_position(node: onnx.NodeProto) -> bool:
    """Whether each output position of a N x C x H x W node reads only that position of its inputs."""
    positions = trait(node.op_type).positions
    if positions == CHANNEL_AXIS:  # no axis: Softmax's default (1, or -1 since opset 13) mixes positions
        return attributes(node).get("axis") in (1, -3)
    return positions == POINTWISE


def spatially_local(node: onnx.NodeProto) -> bool:
    """Whether each output position reads only nearby input positions (its receptive field), so that
    fields side by side in one input keep apart through the node."""
    positions = trait(node.op_type).positions
    return reads_own_position(node) or positions in (WINDOW, SHIFT)


@dataclass(frozen=True)
class Weights:
    """The weights behind a layer: the node holding them, the weight tensor's name and the bias
    tensor's (None without one)."""

    node: onnx.NodeProto
    weight: str
    bias: str = None


def weights_of(model: onnx.ModelProto, layer: str, through_bias: bool = False):
    """The weights behind ``layer`` (a tensor name): those of the node computing it, or of the nearest
    one up a chain of unit-keeping ops with a single non-constant input (conv -> BatchNorm -> ReLU).
    through_bias: also climb elementwise ops whose other inputs are constants (the bias Add or scale
    Mul of an exporter that keeps them apart, a Keras dense layer's MatMul -> Add); the weights views
    do not, as such an Add is a layer of its own there. None when no node with constant float
    weights computes ``layer`` that way."""
    graph = model.graph
    producer = {name: node for node in graph.node for name in node.output if name}
    constant = constant_tensors(graph)
    node = producer.get(layer)
    while node is not None:
        traits = trait(node.op_type)
        if traits.weight is not None and len(node.input) > traits.weight and node.input[traits.weight] in constant:
            has_bias = traits.bias is not None and len(node.input) > traits.bias and node.input[traits.bias]
            return Weights(node, node.input[traits.weight], node.input[traits.bias] if has_bias else None)
        data = [name for name in node.input if name and name not in constant]
        if not (traits.keeps_units or (through_bias and traits.elementwise)) or len(data) != 1:
            return None
        node = producer.get(data[0])
    return None


def constant_tensors(graph: onnx.GraphProto) -> set:
    """Tensors that do not depend on the graph's real inputs: initializers and what only they
    and Constant nodes compute."""
    found = {t.name for t in graph.initializer} | {""}
    for node in graph.node:  # topological order
        if all(name in found for name in node.input):
            found.update(node.output)
    found.discard("")
    return found
