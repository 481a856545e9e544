"""Backward as one ONNX model: the forward up to a layer and the backward from a seed to the pixels.

For a (layer, mode) the model takes the image batch and the seed (a diff shaped like the layer) as
inputs and gives the input's diff (and, when asked, every layer's diff on the way). Its backward
nodes are the rules of onnx_rules.py recorded along the same path, in the same order, as the NumPy
walk visits (backward.py), so both sum the same diffs in the same order. ONNX Runtime runs it as one
session, on the CPU or CUDA, reused for every frame, crop and optimization step.

A node whose rule the graph cannot express raises CannotRecord, whose one line says which node and
why: the caller then walks in NumPy.
"""
from collections import ChainMap
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from app.net import onnx_graph
from app.net.autodiff import onnx_rules
from app.net.autodiff.graph import arrived, send_back
from app.net.autodiff.op import Op
from app.net.autodiff.recorder import CannotRecord, Recorder

OPSET = 16          # ScatterElements adds (max pooling's overlapping switches) from opset 16
IR_VERSION = 8      # what opset 16 needs; ONNX Runtime reads it
SEED = "backward/seed"
INPUT_DIFF = "backward/input_diff"


@dataclass(frozen=True)
class BackwardGraph:
    """A backward pass as a model: feed the batch and SEED, read ``outputs`` (the input's diff first,
    then the diffs of ``layers``)."""

    model: onnx.ModelProto
    outputs: tuple
    layers: tuple


def backward_model(run, steps: list, start: str, mode: str, lrn_passthrough: bool, keep: frozenset) -> BackwardGraph:
    """The model of the pass that walks ``steps`` (backward.py's path, reverse topological) from a
    seed at tensor ``start``. keep: the layers whose diffs it also gives."""
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
        op = Op(node, step.attrs, step.opset, [values.get(name) if name else None for name in node.input],
                [values.get(name) for name in node.output], dys, step.wants)
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
    # every forward tensor an output, as in the net's forward session: ONNX Runtime then fuses and
    # rounds the graph's forward exactly as the run's, and no rectifier gate flips where its input
    # is near 0 (fused, a random-weight MobileNet's gradient moved by 2e-2 of its largest value)
    model = onnx_graph.with_all_outputs(_forward_up_to(run, start))
    graph = model.graph
    graph.node.extend(recorder.nodes)
    graph.initializer.extend(recorder.constants)
    seed_shape = ["N"] + list(run.tensors[start].shape[1:]) if start in run.tensors else None
    graph.input.append(helper.make_tensor_value_info(SEED, TensorProto.FLOAT, seed_shape))
    graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs)
    return BackwardGraph(model, outputs, layers)


def _forward_up_to(run, tensor: str) -> onnx.ModelProto:
    """The net's model cut to what ``tensor`` depends on, at opset 16 or later (where the recorded
    nodes are written)."""
    model = run.model
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    if version < 13:
        try:
            model = onnx.version_converter.convert_version(model, OPSET)
        except Exception as error:  # the converter raises its own untyped errors
            raise CannotRecord(f"opset {version} model not convertible to opset {OPSET}: "
                               f"{str(error).splitlines()[0][:200]}") from None
    model = onnx_graph.needed_for(onnx_graph.runnable(model), tensor)
    if OPSET > version >= 13:
        # opsets 13 to 16 changed no op the toolbox runs but RoiAlign's default coordinates
        if any(node.op_type == "RoiAlign" for node in model.graph.node):
            raise CannotRecord(f"opset {version} model with RoiAlign")
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = OPSET
    model.ir_version = max(model.ir_version, IR_VERSION)
    return model


def run_graph(session, graph: BackwardGraph, batch: np.ndarray, input_name: str, seed: np.ndarray) -> tuple:
    """(input diff, {layer: diff}) of one pass of the session of ``graph``."""
    results = session.run(list(graph.outputs), {input_name: batch, SEED: np.ascontiguousarray(seed, np.float32)})
    return results[0], dict(zip(graph.layers, results[1:]))
