"""Every channel's spatial max and where it first occurs, computed inside the ONNX graph.

Net.forward returns every tensor of the graph, so ONNX Runtime allocates and copies out all of them
(1.6 GB for the default model at batch 32). Scoring channels needs only their max and its position:
this appends, for each chosen C x H x W layer, Reshape to N x C x HW, ReduceMax and ArgMax (first
index on ties, i.e. the first position in C order) and asks the session for those N x C outputs
only; vector layers (N x C) are returned as they are.

The values equal Net.forward's to the last bit. ORT fuses an op into its single consumer (a conv with
its activation, a conv accumulating into the residual Add), which changes rounding; Net.forward's
tensors are all outputs, so nothing there is fused. Each tensor that the chosen layers depend on and
that has one consumer therefore gets a cheap second one (GlobalMaxPool, which reads it in ORT's
blocked layout) so that the same kernels run.
"""
from collections import Counter

import numpy as np
from onnx import TensorProto, ValueInfoProto, helper

from app.net import onnx_graph

SUFFIX = "::spatial_max"  # appended to a tensor's name for the nodes and tensors added here


def opset_version(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def ancestors(graph, names) -> set:
    """Every tensor the named tensors are computed from, themselves included."""
    producer = {output: node for node in graph.node for output in node.output}
    found, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name in found:
            continue
        found.add(name)
        stack.extend(producer[name].input if name in producer else [])
    return found


def add_reductions(graph, layer: str, opset: int) -> list:
    """Nodes computing N x C max and argmax over H x W of ``layer``; returns their output names."""
    flat, maxima, where = (f"{layer}{SUFFIX}.{part}" for part in ("flat", "max", "argmax"))
    axes = {}
    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        axes_input = [f"axes{SUFFIX}"]
        if not any(t.name == axes_input[0] for t in graph.initializer):
            graph.initializer.append(helper.make_tensor(axes_input[0], TensorProto.INT64, [1], [2]))
    else:
        axes_input, axes = [], {"axes": [2]}
    first_index = {"select_last_index": 0} if opset >= 12 else {}  # before 12 the first was the only rule
    graph.node.extend([
        helper.make_node("Reshape", [layer, f"flat_shape{SUFFIX}"], [flat], name=flat),
        helper.make_node("ReduceMax", [flat] + axes_input, [maxima], name=maxima, keepdims=0, **axes),
        helper.make_node("ArgMax", [flat], [where], name=where, axis=2, keepdims=0, **first_index)])
    return [maxima, where]


def reduction_model(net, layers: list):
    """A copy of the net's model whose outputs are (max, argmax over H x W) of each chosen map layer
    and the value of each chosen vector layer, in that order, then the fusion barriers' outputs."""
    model = onnx_graph.runnable(net.model)
    graph, opset = model.graph, opset_version(model)
    consumers = Counter(name for node in graph.node for name in node.input)
    needed = ancestors(graph, layers)
    original_nodes = list(graph.node)
    del graph.output[:]
    graph.initializer.append(helper.make_tensor(f"flat_shape{SUFFIX}", TensorProto.INT64, [3], [0, 0, -1]))
    for layer in layers:
        names = [layer] if net.layer(layer).kind == "vector" else add_reductions(graph, layer, opset)
        graph.output.extend(ValueInfoProto(name=name) for name in names)
    for node in original_nodes:
        for name in node.output:
            value = net.tensors.get(name)  # from the batch-1 run Net made: dtype and rank
            if name not in needed or name in layers or consumers[name] != 1 or value is None \
                    or value.dtype.kind != "f":
                continue
            if value.ndim >= 3:
                graph.node.append(helper.make_node("GlobalMaxPool", [name], [name + SUFFIX], name=name + SUFFIX))
                name += SUFFIX
            graph.output.append(ValueInfoProto(name=name))
    return model


class SpatialMax:
    """``run(batch)`` -> {layer: (maxima N x C float32, y N x C or None, x N x C or None)} for the
    layers given: the max of each channel's activation and its first position in C order."""

    def __init__(self, net, layers: list):
        self.net, self.layers = net, list(layers)
        self._widths = {layer: net.layer(layer).shape[2] for layer in self.layers
                        if net.layer(layer).kind == "map"}
        self._session = net.make_session(reduction_model(net, self.layers))
        outputs = sum((2 if layer in self._widths else 1 for layer in self.layers), 0)
        self._outputs = [o.name for o in self._session.get_outputs()][:outputs]

    def run(self, batch: np.ndarray) -> dict:
        values = iter(self._session.run(self._outputs, {self.net.input_name: batch}))
        scores = {}
        for layer in self.layers:
            maxima = np.asarray(next(values), np.float32)
            if layer in self._widths:
                y, x = np.divmod(next(values), self._widths[layer])
                scores[layer] = (maxima, y, x)
            else:
                scores[layer] = (maxima, None, None)
        return scores
