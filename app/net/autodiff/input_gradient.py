"""The forward to a layer and the vanilla backward from a seed at it to the input, as one ONNX model.

What a step of activation maximization needs: the layer's value (the objective's score) and the
gradient of <seed, layer> with respect to the input batch. As two stages (a forward run returning
every tensor up to the layer, then the backward graph fed those tensors) every intermediate tensor
leaves ONNX Runtime and comes back; as one model nothing does but the batch, the seed and the two
results, and ONNX Runtime fuses the forward (a convolution with its activation) as in a plain run.

The model is the net's own nodes up to the layer (their opset raised to the backward's when lower)
followed by the backward graph of graph_backward.py, whose fed tensors are now the forward's own.
The forward keeps only the fusions that compute the same numbers as Net.forward (app/net/
exact_fusion.py: a conv with its ReLU or ReLU6, not with a residual Add): a fusion that rounds
differently flips the rectifier gates whose input lies within rounding of their threshold, and the
default model's gradient then moved by 5e-4 of its largest value.
"""
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, version_converter

from app.net import onnx_graph
from app.net.exact_fusion import barrier, needs_barrier
from app.net.autodiff.graph_backward import INPUT_DIFF, IR_VERSION, OPSET, backward_model, run_bound
from app.net.autodiff.recorder import SEED, CannotRecord


@dataclass(frozen=True)
class InputGradientGraph:
    """Feed the batch and SEED; read ``outputs``: the input's diff, then the layer's value (the
    model's other outputs are the fusion barriers')."""

    model: onnx.ModelProto
    input_name: str
    outputs: tuple
    layer_shape: tuple   # the layer's value per image at the size recorded


def input_gradient_model(run, layer: str) -> InputGradientGraph:
    """The model for ``layer``, recorded on the values of ``run`` (a forward run that computed the
    layer, at the net's input size or another: the model then takes that size); raises
    CannotRecord, with its one line, when the graph cannot express a node's rule."""
    steps = run.plan.path(layer, frozenset([run.input_name]))
    backward = backward_model(run, steps, layer, "grad", False, frozenset()).model
    forward = _forward_to(run.net.skeleton, layer, run.input.shape[2:])   # the weights: the net's own arrays
    made = [name for node in forward.graph.node for name in node.output]
    weights = {weight.name for weight in forward.graph.initializer}
    graph = forward.graph
    graph.node.extend(backward.graph.node)
    graph.initializer.extend(c for c in backward.graph.initializer if c.name not in weights)
    graph.input.extend(value for value in backward.graph.input if value.name not in set(made) | {run.input_name})
    readers = onnx_graph.readers(graph)
    barriers = []
    for name in made:
        value = run.tensors[name] if name != layer and run.tensors.computed(name) else None
        if value is not None and needs_barrier(name, readers, value.dtype):
            nodes, output = barrier(name, value.ndim)
            graph.node.extend(nodes)
            barriers.append(output)
    # shapes a file recorded at its own batch size would let ONNX Runtime fold the backward's Shape
    # nodes into constants of that batch
    del graph.value_info[:], graph.output[:]
    outputs = (INPUT_DIFF, layer)
    graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in outputs)
    graph.output.extend(onnx.ValueInfoProto(name=name) for name in sorted(barriers))
    return InputGradientGraph(forward, run.input_name, outputs, run[layer].shape[1:])


def _forward_to(model: onnx.ModelProto, layer: str, size: tuple) -> onnx.ModelProto:
    """The nodes ``layer`` depends on, taking images of ``size`` (height, width), at the backward's
    opset or the model's own when later."""
    forward = onnx_graph.with_input_size(onnx_graph.needed_for(onnx_graph.runnable(model), layer), size)
    opset = next((entry.version for entry in forward.opset_import if entry.domain in ("", "ai.onnx")), 1)
    if opset >= OPSET:
        return forward
    # runnable() moved the weights out of the graph inputs, which IR versions before 4 require
    forward.ir_version = max(forward.ir_version, IR_VERSION)
    try:
        raised = version_converter.convert_version(forward, OPSET)
    except Exception as error:  # the converter raises its own untyped errors
        raise CannotRecord(f"layer {layer}: the forward's opset {opset} cannot be raised to {OPSET} "
                           f"({str(error).splitlines()[0][:120]})") from None
    return raised


def run_input_gradient(session, graph: InputGradientGraph, batch: np.ndarray, seed: np.ndarray) -> tuple:
    """(the input's diff, the layer's value) of ``batch`` with the diff ``seed`` at the layer."""
    feeds = {graph.input_name: batch, SEED: np.ascontiguousarray(seed, np.float32)}
    return tuple(run_bound(session, feeds, graph.outputs))
