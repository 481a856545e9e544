"""Every channel's spatial max and where it first occurs, computed inside the ONNX graph.

Net.forward returns every tensor of the graph, so ONNX Runtime allocates and copies out all of them
(1.6 GB for the default model at batch 32). Scoring channels needs only their max and its position:
this appends, for each chosen C x H x W layer, Reshape to N x C x HW, ReduceMax and ArgMax (first
index on ties, i.e. the first position in C order) and asks the session for those N x C outputs
only; vector layers (N x C) are returned as they are.

The values equal Net.forward's to the last bit. ORT fuses an op with its single consumer (a conv
with its activation, a conv accumulating into the residual Add) and then runs other kernels, which
round differently; Net.forward's tensors are all outputs, so nothing there is fused. Each tensor
that the chosen layers depend on and that has one consumer therefore gets a second one (a
GlobalMaxPool, which reads it in ORT's blocked layout, or the tensor itself as an output when it has
no spatial axes) so that the same kernels run.
"""
from collections import Counter

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, ValueInfoProto, helper

from app.net import onnx_graph

SUFFIX = "::spatial_max"  # appended to a tensor's name for the nodes and tensors added here
FLAT_SHAPE, AXES = "flat_shape" + SUFFIX, "axes" + SUFFIX


def opset_version(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def reductions(layer: str, opset: int) -> tuple:
    """(nodes, outputs): N x C max and argmax over H x W of ``layer``."""
    flat, maxima, where = (f"{layer}{SUFFIX}.{part}" for part in ("flat", "max", "argmax"))
    axes_input, axes = ([AXES], {}) if opset >= 18 else ([], {"axes": [2]})  # an input from opset 18 on
    first_index = {"select_last_index": 0} if opset >= 12 else {}  # before 12 the first was the only rule
    nodes = [helper.make_node("Reshape", [layer, FLAT_SHAPE], [flat], name=flat),
             helper.make_node("ReduceMax", [flat] + axes_input, [maxima], name=maxima, keepdims=0, **axes),
             helper.make_node("ArgMax", [flat], [where], name=where, axis=2, keepdims=0, **first_index)]
    return nodes, [maxima, where]


def reduction_model(net, layers: list):
    """A copy of the net's model whose outputs are (max, argmax over H x W) of each chosen map layer
    and the value of each chosen vector layer, in that order, then the fusion barriers' outputs."""
    model = onnx_graph.runnable(net.model)
    graph, opset = model.graph, opset_version(model)
    consumers = Counter(name for node in graph.node for name in node.input)
    needed, chosen = onnx_graph.ancestors(graph, layers), set(layers)
    graph.initializer.append(helper.make_tensor(FLAT_SHAPE, TensorProto.INT64, [3], [0, 0, -1]))
    if opset >= 18:
        graph.initializer.append(helper.make_tensor(AXES, TensorProto.INT64, [1], [2]))
    outputs, barriers, nodes = {}, [], []
    for node in graph.node:
        nodes.append(node)
        for name in node.output:
            dtype, rank = net.tensor_types.get(name, (None, 0))
            if name in chosen and net.layer(name).kind == "vector":
                outputs[name] = [name]
            elif name in chosen:
                added, outputs[name] = reductions(name, opset)
                nodes.extend(added)
            elif name in needed and consumers[name] == 1 and dtype is not None and dtype.kind == "f":
                if rank >= 3:
                    name, tensor = name + SUFFIX, name
                    nodes.append(helper.make_node("GlobalMaxPool", [tensor], [name], name=name))
                barriers.append(name)
    del graph.node[:], graph.output[:]
    graph.node.extend(nodes)
    names = [name for layer in layers for name in outputs[layer]] + barriers
    graph.output.extend(ValueInfoProto(name=name) for name in names)
    return model


class SpatialMax:
    """``run(batch)`` -> {layer: (maxima N x C float32, y N x C or None, x N x C or None)} for the
    layers given: the max of each channel's activation and its first position in C order."""

    def __init__(self, net, layers: list):
        self.net, self.layers = net, list(layers)
        self._widths = {layer: net.layer(layer).shape[2] for layer in self.layers
                        if net.layer(layer).kind == "map"}
        # priority order runs each added node as soon as its input exists (the default order ran them
        # all after the last layer: 3.7 GB held at batch 32 instead of 1 GB, and 20% slower)
        self._session = net.make_session(reduction_model(net, self.layers), ort.ExecutionOrder.PRIORITY_BASED)
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
