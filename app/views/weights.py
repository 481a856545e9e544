"""Finding the weights behind a layer, one row per output unit.

A user selects a layer by its output tensor; the weights belong to the Conv / Gemm / MatMul node
that made it, possibly a few element-wise steps upstream (conv -> BatchNorm -> ReLU).
"""
import numpy as np

from app.errors import DeepVisError

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Ops whose first input is the data and whose output has the same units: the search walks through them.
PASS_THROUGH_OPS = frozenset("""
    Relu LeakyRelu PRelu Elu Selu Celu Clip Sigmoid HardSigmoid HardSwish Tanh Softplus Softsign Gelu Mish
    BatchNormalization InstanceNormalization LRN Dropout Identity Abs ThresholdedRelu
""".split())


def _producers(model) -> dict:
    return {name: node for node in model.graph.node for name in node.output if name}


def weighted_node(net, layer: str):
    """The node holding ``layer``'s weights: its producer, or the nearest one up a chain of
    element-wise ops. Raises DeepVisError when the layer has no weights of its own."""
    net.layer(layer)  # names the layer in the error when it does not exist
    producers = _producers(net.model)
    node = producers.get(layer)
    while node is not None and node.op_type in PASS_THROUGH_OPS:
        node = producers.get(node.input[0])
    if node is None or node.op_type not in WEIGHTED_OPS:
        raise DeepVisError(f"{net.spec.name}: {layer}: no Conv, Gemm or MatMul weights behind this layer")
    return node


def _constant(net, name: str, layer: str) -> np.ndarray:
    """An initializer, or a tensor computed from constants (Constant / ConstantOfShape nodes)."""
    if name in net.initializers:
        return np.asarray(net.initializers[name])
    value = net.constants.get(name)
    if value is None:
        raise DeepVisError(f"{net.spec.name}: {layer}: weight tensor {name!r} is not a constant")
    return np.asarray(value)


def _attribute(node, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute.i
    return default


def unit_weights(net, layer: str) -> np.ndarray:
    """Weights of ``layer`` as O x ... (axis 0 = output unit), float32.

    Conv: O x C/group x kh x kw as stored. ConvTranspose: stored C x O/group x kh x kw, returned with
    the first two axes swapped (group 1). Gemm / MatMul: O x inputs.
    """
    node = weighted_node(net, layer)
    weights = _constant(net, node.input[1], layer).astype(np.float32)
    if node.op_type == "ConvTranspose":
        if _attribute(node, "group", 1) != 1:
            raise DeepVisError(f"{net.spec.name}: {layer}: grouped ConvTranspose weights are not supported")
        return np.ascontiguousarray(weights.transpose(1, 0, *range(2, weights.ndim)))
    if node.op_type == "Gemm":
        return weights if _attribute(node, "transB", 0) else np.ascontiguousarray(weights.T)
    if node.op_type == "MatMul":
        if weights.ndim != 2:
            raise DeepVisError(f"{net.spec.name}: {layer}: MatMul weights of rank {weights.ndim}; 2 expected")
        return np.ascontiguousarray(weights.T)
    return weights


def conv_weights(net, layer: str) -> np.ndarray:
    """Weights of a convolution layer, O x C x kh x kw (see ``unit_weights``)."""
    weights = unit_weights(net, layer)
    if weights.ndim != 4:
        raise DeepVisError(f"{net.spec.name}: {layer}: not a 2-D convolution (weights of shape {weights.shape})")
    return weights


def first_conv_layer(net) -> str:
    """The first layer (in topological order) made by a Conv: the filters that see the image."""
    producers = _producers(net.model)
    for layer in net.layers:
        node = producers.get(layer.name)
        if node is not None and node.op_type == "Conv":
            return layer.name
    raise DeepVisError(f"{net.spec.name}: no Conv layer in the model")
