"""Backward as one ONNX model: the backward from a seed at a layer to the pixels.

For a (layer, mode) the model takes the seed (a diff shaped like the layer) and the forward tensors
its rules read (rectifiers' outputs, pooling inputs, the batch...), fed from the run, and gives the
input's diff (and, when asked, every layer's diff on the way). Its nodes are the rules of
onnx_rules.py recorded along the same path, in the same order, as the NumPy walk visits
(backward.py), so both sum the same diffs in the same order; the weights are the net's. ONNX
Runtime runs it as one session, on the CPU or CUDA, reused for every frame, crop and optimization
step.

The forward is the run's, not computed again inside the graph: on the CPU that doubled the work of
a pass (CaffeNet conv5, profiled: the forward's convolutions 40 ms, the backward's 39 ms), and a
forward computed again rounds differently where ONNX Runtime fuses it, enough to flip a rectifier's
gate whose input is near 0 (a random-weight MobileNet's gradient moved by 2e-2 of its largest value).

A node whose rule the graph cannot express raises CannotRecord, whose one line says which node and
why: the caller then walks in NumPy.
"""
from collections import ChainMap
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.net.autodiff import onnx_rules
from app.net.autodiff.graph import arrived, send_back
from app.net.autodiff.op import Op
from app.net.autodiff.recorder import SEED, UNIT, CannotRecord, Recorder

OPSET = 16          # ScatterElements adds (max pooling's overlapping switches) from opset 16
IR_VERSION = 8      # what opset 16 needs
INPUT_DIFF = "backward/input_diff"


@dataclass(frozen=True)
class BackwardGraph:
    """A backward pass as a model: feed SEED and the run's ``fed`` tensors, read ``outputs`` (the
    input's diff first, then the diffs of ``layers``)."""

    model: onnx.ModelProto
    outputs: tuple
    layers: tuple
    fed: tuple   # the forward tensors (the batch among them) its rules read, fed from the run
    unit: bool = False   # whether UNIT is an input


def backward_model(run, steps: list, start: str, mode: str, lrn_passthrough: bool, keep: frozenset,
                   one_unit: bool = False) -> BackwardGraph:
    """The model of the pass that walks ``steps`` (backward.py's path, reverse topological) from a
    seed at tensor ``start``. keep: the layers whose diffs it also gives; one_unit: the seed's only
    non-zero channel is fed as UNIT (a seed at one unit), which the seed's convolution uses alone."""
    if run.tensors[run.input_name].dtype != np.float32:
        raise CannotRecord("the graph runs float32 batches only")
    values = ChainMap(run.tensors, run.initializers)
    rules = onnx_rules.rules_for(mode, lrn_passthrough)
    recorder = Recorder()
    diffs, kept = {start: SEED}, {}
    for step in steps:
        node = step.node
        dys = arrived(step, diffs, keep, kept)
        if dys is None:
            continue
        label = f"node {node.name or node.output[0]!r} ({node.op_type})"
        rule = rules.get(node.op_type)
        if rule is None:
            raise CannotRecord(f"{label}: no graph rule for {node.op_type}")
        seeded = one_unit and SEED in dys
        op = Op(node, step.attrs, step.opset, [values.get(name) if name else None for name in node.input],
                [values.get(name) for name in node.output], dys, step.wants, seeded)
        try:
            input_diffs = rule(recorder, op)
        except CannotRecord as error:
            raise CannotRecord(f"{label}: {error}") from None
        send_back(step, diffs, input_diffs, lambda previous, diff: recorder.node("Add", [previous, diff]))
    diffs.update(kept)
    input_diff = diffs.get(run.input_name) or recorder.zeros_like(run.input_name)
    layers = tuple(name for name in run.layer_names if name in kept)
    outputs = (INPUT_DIFF,) + tuple(f"backward/diff/{name}" for name in layers)
    for source, output in zip((input_diff,) + tuple(kept[name] for name in layers), outputs):
        recorder.nodes.append(helper.make_node("Identity", [source], [output], name=output))
    read = {name for node in recorder.nodes for name in node.input if name}
    made = {name for node in recorder.nodes for name in node.output} | {c.name for c in recorder.constants}
    outside = sorted(read - made - {SEED, UNIT})
    weights = [name for name in outside if name in run.initializers]
    fed = tuple(name for name in outside if name not in run.initializers)
    inputs = [helper.make_tensor_value_info(SEED, TensorProto.FLOAT, None)]
    if UNIT in read:
        inputs.append(helper.make_tensor_value_info(UNIT, TensorProto.INT64, [1]))
    inputs += [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(run.tensors[name].dtype), None)
               for name in fed]
    graph = helper.make_graph(
        recorder.nodes, "backward", inputs,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        recorder.constants + [numpy_helper.from_array(run.initializers[name], name) for name in weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    return BackwardGraph(model, outputs, layers, fed, UNIT in read)


def run_graph(session, graph: BackwardGraph, run, seed: np.ndarray, unit: int) -> tuple:
    """(input diff, {layer: diff}) of one pass of the session of ``graph`` on the tensors of ``run``."""
    feeds = {name: run.tensors[name] for name in graph.fed}
    feeds[SEED] = np.ascontiguousarray(seed, np.float32)
    if graph.unit:
        feeds[UNIT] = np.array([unit], np.int64)
    results = run_bound(session, feeds, graph.outputs)
    return results[0], dict(zip(graph.layers, results[1:]))


def run_bound(session, feeds: dict, outputs) -> list:
    """session.run through I/O binding: on CUDA each input goes to the device once and only the
    outputs asked for come back (the same results as session.run on the CPU)."""
    if session.get_providers()[0] == "CPUExecutionProvider":
        return session.run(list(outputs), feeds)
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, np.ascontiguousarray(value))
    for name in outputs:
        binding.bind_output(name, "cpu")
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()
