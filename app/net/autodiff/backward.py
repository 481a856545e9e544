"""Backward passes from any unit of any layer, in NumPy, on the values of one forward run.

One reverse walk over the graph: each visited node's rule turns its output diffs into input diffs;
a tensor read by several nodes sums what they send back before its producer is visited, so a
rectifier shared by two branches rectifies the total, as the modes require.

The passes read a run (app/net/run.py): its ``model``, ``initializers``, ``tensors`` (every tensor of
the forward run, the input included), ``input_name``, ``layer_names``, ``plan`` (the model's
GraphPlan, shared by every run of the net) and ``where`` (what messages start with).
"""
from collections import ChainMap
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

from app.errors import DeepVisError
from app.net.autodiff.graph import GraphPlan, arrived, send_back
from app.net.autodiff.graph_backward import backward_model, run_graph
from app.net.autodiff.modes import MODES, OPTIONS, RECTIFIERS, rectifies, rules_for
from app.net.autodiff.op import Op
from app.net.autodiff.rules import RULES
from app.net.autodiff.seeds import make_seed
from app.net.ops import weights_of

# The walk's matrix products are small (one image, one layer): a second BLAS thread mostly waits
# for a core held by ONNX Runtime, the drawing or another program (4-8x slower on 2 busy cores).
_BLAS = ThreadpoolController()


@dataclass(frozen=True)
class Backward:
    """What a backward pass gives: the diff at the input (shaped like the batch) and, when asked,
    {layer: diff} for every layer on the way (the seed layer and the input included; layers off
    the path, whose diff is zero, are absent)."""

    input: np.ndarray
    layers: dict = field(default_factory=dict)
    fallback: str = ""  # why the NumPy walk ran although the graph was asked for ("" when it was not)


ENGINES = ("graph", "numpy")


def backward(run, layer: str, unit, mode: str = "grad", seed="activation", at=None, layer_diffs: bool = False,
             engine: str = "numpy", **options) -> Backward:
    """Backprop from ``unit`` of ``layer`` to the input of ``run``, a forward run.

    mode: "grad", "deconv", "guided" or "desalinet" (see modes.py). seed: "activation", "onehot" or a
    diff array (see seeds.py); at: (y, x) of the one-hot seed, else each image's argmax. Options:
    lrn_passthrough=True lets LRN pass its diff unchanged (the original toolbox's deconv switch);
    seed_through_rectifier=True places the seed below the rectifier that computes ``layer`` (the
    original toolbox's pass from a Caffe blob skipped its in-place ReLU), so that a unit saturated
    at a ReLU6's 6, whose gradient is zero, still shows what drove it.
    layer_diffs: also give every layer's diff on the way (``Backward.layers``).
    engine: "graph" runs the pass as one ONNX Runtime session made for this (layer, mode, options)
    and kept by the run's net (graph_backward.py), falling back to the NumPy walk when the graph
    cannot express a rule on the path (``Backward.fallback`` says which); "numpy" walks in NumPy.
    """
    where = run.where
    if engine not in ENGINES:
        raise DeepVisError(f"{where}: unknown backward engine {engine!r}; one of {', '.join(ENGINES)}")
    if mode not in MODES:
        raise DeepVisError(f"{where}: unknown backprop mode {mode!r}; one of {', '.join(MODES)}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise DeepVisError(f"{where}: unknown backprop option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    values = _values(run)
    seed_diff = make_seed(_layer_value(run, layer, where), unit, seed, at, f"{where}: layer {layer}")
    keep = frozenset(run.layer_names) if layer_diffs else frozenset()
    steps = run.plan.path(layer, frozenset([run.input_name]))
    start = layer
    if options.get("seed_through_rectifier"):
        steps, start = _below_rectifier(steps, layer, values)
    lrn_passthrough = bool(options.get("lrn_passthrough"))
    fallback = ""
    if engine == "graph":
        one_unit = isinstance(seed, str) and seed_diff.ndim > 1   # "activation" and "onehot": channel ``unit``
        key = ("backward", layer, mode, lrn_passthrough, start, layer_diffs, one_unit)
        graph = run.graph_session(key, lambda: backward_model(run, steps, start, mode, lrn_passthrough, keep,
                                                              one_unit))
        if isinstance(graph, str):
            fallback = graph
        else:
            input_diff, diffs = run_graph(*graph, run, seed_diff, unit)
            return _result(run, layer, seed_diff, input_diff, diffs, keep, layer_diffs)
    diffs = walk(steps, values, {start: seed_diff}, rules_for(mode, lrn_passthrough), keep,
                 run.helper_session_options)
    return _result(run, layer, seed_diff, diffs.get(run.input_name), diffs, keep, layer_diffs, fallback)


def _result(run, layer: str, seed_diff, input_diff, diffs: dict, keep: frozenset, layer_diffs: bool,
            fallback: str = "") -> Backward:
    image = run.tensors[run.input_name]
    # the caller's own array: never a view of the seed or of a padded buffer
    input_diff = np.zeros_like(image) if input_diff is None else np.array(input_diff).reshape(image.shape)
    if not layer_diffs:
        return Backward(input_diff, fallback=fallback)
    on_path = {name: diff for name, diff in diffs.items() if name in keep}
    if layer in keep:
        on_path[layer] = seed_diff
    on_path[run.input_name] = input_diff
    return Backward(input_diff, on_path, fallback)


def weight_gradient(run, layer: str, unit, param_layer: str, seed="activation", at=None) -> np.ndarray:
    """The vanilla gradient of the seed at ``unit`` of ``layer`` with respect to the weights of the
    Conv / ConvTranspose / Gemm / MatMul node that computes ``param_layer`` (or feeds it through
    activations, biases, normalisation), from the forward run ``run``. Shaped like the weights;
    summed over the batch (run a batch of one image for that image's gradient)."""
    where = run.where
    values = _values(run)
    seed_diff = make_seed(_layer_value(run, layer, where), unit, seed, at, f"{where}: layer {layer}")
    plan = run.plan
    weight = _weight_of(plan, param_layer, where)
    steps = plan.path(layer, frozenset([weight]))
    if not steps:
        raise DeepVisError(f"{where}: layer {layer} does not depend on the weights of {param_layer} ({weight})")
    diffs = walk(steps, values, {layer: seed_diff}, RULES, frozenset(), run.helper_session_options)
    weights = values[weight]
    return np.zeros_like(weights) if diffs.get(weight) is None else diffs[weight].reshape(weights.shape)


def walk(steps: list, values, seeds: dict, rules: dict, keep: frozenset, session_options=None) -> dict:
    """Visit the steps (reverse topological order) from the seed diffs; returns the diffs that reached
    the sources, plus those of the ``keep`` tensors on the way. session_options: what the rules make
    their own ONNX Runtime sessions from (``Op.session_options``; None: NumPy only)."""
    with _BLAS.limit(limits=1, user_api="blas"):
        return _walk(steps, values, seeds, rules, keep, session_options)


def _walk(steps: list, values, seeds: dict, rules: dict, keep: frozenset, session_options) -> dict:
    diffs, kept = dict(seeds), {}
    for step in steps:
        node = step.node
        dys = arrived(step, diffs, keep, kept)
        if dys is None:
            continue
        seeded = any(dy is not None and dy is seeds.get(name) for name, dy in zip(node.output, dys))
        op = Op(node, step.attrs, step.opset, [values.get(name) if name else None for name in node.input],
                [values.get(name) for name in node.output], dys, step.wants, seeded, session_options)
        send_back(step, diffs, rules[node.op_type](op), np.add)
    diffs.update(kept)
    return diffs


def _below_rectifier(steps: list, layer: str, values) -> tuple:
    """(steps, seed tensor) with the rectifier that computes ``layer`` skipped, when one does: the
    path's first step is the seed's producer (every other node on the path feeds it)."""
    if not steps or layer not in steps[0].node.output or steps[0].node.op_type not in RECTIFIERS:
        return steps, layer
    step = steps[0]
    op = Op(step.node, step.attrs, step.opset, [values.get(name) if name else None for name in step.node.input],
            [values.get(layer)], [None], step.wants)
    return (steps[1:], step.node.input[0]) if rectifies(op) else (steps, layer)


def _values(run) -> ChainMap:
    return ChainMap(run.tensors, run.initializers)


def _layer_value(run, layer: str, where: str) -> np.ndarray:
    value = run.tensors.get(layer)
    if value is None or getattr(value, "dtype", np.dtype(int)).kind != "f":
        raise DeepVisError(f"{where}: no layer named {layer!r} to backprop from")
    return value


def _weight_of(plan: GraphPlan, param_layer: str, where: str) -> str:
    """The weight tensor behind param_layer (ops.weights_of, through a bias Add too)."""
    found = weights_of(plan.model, param_layer, through_bias=True)
    if found is not None:
        return found.weight
    raise DeepVisError(f"{where}: layer {param_layer}: no Conv, ConvTranspose, Gemm or MatMul with weights "
                       "computes it")
