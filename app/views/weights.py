"""Finding the weights behind a layer, one row per output unit.

A user selects a layer by its output tensor; the weights belong to the Conv / Gemm / MatMul node
that made it, possibly a few unit-keeping steps upstream (conv -> BatchNorm -> ReLU); app/net/ops.py
says which ops hold weights and which keep units.
"""
import numpy as np

from app.errors import DeepVisError
from app.net.ops import Weights, attributes, weights_of


def layer_weights(net, layer: str) -> Weights:
    """The weights behind ``layer``: its producer's, or the nearest ones up a chain of unit-keeping
    ops (ops.weights_of). Raises DeepVisError when the layer has no weights of its own."""
    net.layer(layer)  # names the layer in the error when it does not exist
    found = weights_of(net.model, layer)
    if found is None:
        raise DeepVisError(f"{net.spec.name}: {layer}: no Conv, Gemm or MatMul weights behind this layer")
    return found


def _constant(net, name: str, layer: str) -> np.ndarray:
    """An initializer, or a tensor computed from constants (Constant / ConstantOfShape nodes)."""
    if name in net.initializers:
        return np.asarray(net.initializers[name])
    value = net.constants.get(name)
    if value is None:
        raise DeepVisError(f"{net.spec.name}: {layer}: weight tensor {name!r} is not a constant")
    return np.asarray(value)


def unit_weights(net, layer: str) -> np.ndarray:
    """Weights of ``layer`` as O x ... (axis 0 = output unit), float32.

    Conv: O x C/group x kh x kw as stored. ConvTranspose: stored C x O/group x kh x kw, returned with
    the first two axes swapped (group 1). Gemm / MatMul: O x inputs.
    """
    found = layer_weights(net, layer)
    node, attrs = found.node, attributes(found.node)
    weights = _constant(net, found.weight, layer).astype(np.float32)
    if node.op_type == "ConvTranspose":
        if attrs.get("group", 1) != 1:
            raise DeepVisError(f"{net.spec.name}: {layer}: grouped ConvTranspose weights are not supported")
        return np.ascontiguousarray(weights.transpose(1, 0, *range(2, weights.ndim)))
    if node.op_type == "Gemm":
        return weights if attrs.get("transB", 0) else np.ascontiguousarray(weights.T)
    if node.op_type == "MatMul":
        if weights.ndim != 2:
            raise DeepVisError(f"{net.spec.name}: {layer}: MatMul weights of rank {weights.ndim}; 2 expected")
        return np.ascontiguousarray(weights.T)
    return weights
