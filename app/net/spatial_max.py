"""Every channel's spatial max and where it first occurs, computed inside the ONNX graph.

Net.forward returns every tensor of the graph, so ONNX Runtime allocates and copies out all of them
(1.6 GB for the default model at batch 32). Scoring channels needs far less: each chosen C x H x W
layer gets two max pools, one over each row (N x C x H) and one over each column (N x C x W), and a
global max pool of the rows (N x C). ORT runs the pools in its blocked layout right where the layer
is written, and only these small tensors leave the session (an ArgMax would first copy the whole
layer out of that layout, and ran slower than the convs themselves); vector layers (N x C) are
returned as they are.

The first position of the max in C order lies in the first row holding it, and in that row at the
first column holding it whenever one row or one column alone holds the max (``positions``). When
several rows and several columns do (a dead channel, a clamped activation) the column stays UNKNOWN
for the caller to settle from the layer itself, for the few such entries it keeps.

The values equal Net.forward's to the last bit: the tensors the chosen layers depend on get the
fusion barriers of app/net/exact_fusion.py.
"""
import numpy as np
import onnxruntime as ort
from onnx import ValueInfoProto, helper

from app.net import onnx_graph
from app.net.exact_fusion import barrier, needs_barrier

SUFFIX = "::spatial_max"  # appended to a tensor's name for the nodes and tensors added here
UNKNOWN = -1  # a column that the row and column maxima leave open


def reductions(layer: str, height: int, width: int) -> tuple:
    """(nodes, outputs) for ``layer``: each channel's max (N x C x 1 x 1), its row maxima (N x C x H x 1)
    and its column maxima (N x C x 1 x W)."""
    maxima, rows, columns = (f"{layer}{SUFFIX}.{part}" for part in ("max", "rows", "columns"))
    nodes = [helper.make_node("MaxPool", [layer], [rows], name=rows, kernel_shape=[1, width], strides=[1, width]),
             helper.make_node("MaxPool", [layer], [columns], name=columns,
                              kernel_shape=[height, 1], strides=[height, 1]),
             helper.make_node("GlobalMaxPool", [rows], [maxima], name=maxima)]
    return nodes, [maxima, rows, columns]


def reduction_model(net, layers: list):
    """A copy of the net's model whose outputs are the reductions of each chosen map layer and the
    value of each chosen vector layer, in that order, then the fusion barriers' outputs."""
    model = onnx_graph.runnable(net.skeleton)
    graph = model.graph
    readers = onnx_graph.readers(graph)
    needed, chosen = onnx_graph.ancestors(graph, layers), set(layers)
    outputs, barriers, nodes = {}, [], []
    for node in graph.node:
        nodes.append(node)
        for name in node.output:
            dtype, rank = net.tensor_types.get(name, (None, 0))
            if name in chosen and net.layer(name).kind == "vector":
                outputs[name] = [name]
            elif name in chosen:
                added, outputs[name] = reductions(name, *net.layer(name).shape[1:])
                nodes.extend(added)
            elif name in needed and needs_barrier(name, readers, dtype):
                added, output = barrier(name, rank)
                nodes.extend(added)
                barriers.append(output)
    del graph.node[:], graph.output[:]
    graph.node.extend(nodes)
    names = [name for layer in layers for name in outputs[layer]] + barriers
    graph.output.extend(ValueInfoProto(name=name) for name in names)
    return model


def first_positions(values: np.ndarray) -> tuple:
    """(maxima, y, x) N x C of an N x C x H x W array: each channel's max and its first position."""
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    where = flat.argmax(axis=2)
    y, x = np.divmod(where, values.shape[3])
    return np.take_along_axis(flat, where[..., None], axis=2)[..., 0], y, x


def positions(rows: np.ndarray, columns: np.ndarray) -> tuple:
    """(y, x) of the max of channels given by their row maxima (M x H) and column maxima (M x W): the
    first row holding it, and the first column holding it, UNKNOWN where several rows and several
    columns hold it."""
    maxima = rows.max(axis=1, keepdims=True)
    in_rows, in_columns = rows == maxima, columns == maxima
    y, x = in_rows.argmax(axis=1), in_columns.argmax(axis=1)
    x[(in_rows.sum(axis=1) > 1) & (in_columns.sum(axis=1) > 1)] = UNKNOWN
    return y, x


class SpatialMax:
    """``run(batch)`` -> {layer: (maxima N x C float32, row maxima N x C x H, column maxima N x C x W)}
    for the layers given, rows and columns None for vector layers; ``positions`` turns rows and
    columns into the first position of the max."""

    def __init__(self, net, layers: list):
        self.net, self.layers = net, list(layers)
        self._maps = {layer for layer in self.layers if net.layer(layer).kind == "map"}
        # priority order runs each added node as soon as its input exists (the default order ran them
        # all after the last layer: 3.7 GB held at batch 32 instead of 1 GB, and 20% slower)
        self._session = net.make_session(reduction_model(net, self.layers), ort.ExecutionOrder.PRIORITY_BASED)
        outputs = sum((3 if layer in self._maps else 1 for layer in self.layers), 0)
        self._outputs = [o.name for o in self._session.get_outputs()][:outputs]

    def run(self, batch: np.ndarray) -> dict:
        values = iter(self._session.run(self._outputs, {self.net.input_name: batch}))
        scores = {}
        for layer in self.layers:
            if layer in self._maps:
                maxima, rows, columns = next(values), next(values), next(values)
                scores[layer] = (maxima[:, :, 0, 0], rows[..., 0], columns[:, :, 0])
            else:
                scores[layer] = (np.asarray(next(values), np.float32), None, None)
        return scores
