"""The float64 oracle the autodiff tests share (no tests here).

Backward rules are checked against central finite differences of a float64 forward pass: ONNX
Runtime computes in float32 only, so the forward is onnx's reference evaluator on the model
converted to float64 (with a few reference ops corrected, see ``ORACLE_OPS``).
"""
import types

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_conv_transpose import ConvTranspose as ReferenceConvTranspose
from scipy import special

from app.net.autodiff.backward import walk
from app.net.autodiff.graph import GraphPlan
from app.net.autodiff.modes import rules_for
from app.net.onnx_graph import with_all_outputs

OPSET = 17


class LRN(OpRun):
    """ONNX's LRN: sum of squares over channels c - floor((size-1)/2) .. c + ceil((size-1)/2).

    NOTE: onnx 1.23's reference LRN loops over the batch axis instead of the channels; this replaces it.
    """

    op_domain = ""

    def _run(self, x, alpha=None, beta=None, bias=None, size=None):
        squares = x * x
        total = np.zeros_like(x)
        before, after = (size - 1) // 2, size // 2
        for c in range(x.shape[1]):
            total[:, c] = squares[:, max(0, c - before):c + after + 1].sum(axis=1)
        return (x / (bias + alpha / size * total) ** beta,)


class ConvTranspose(ReferenceConvTranspose):
    """NOTE: onnx 1.23's reference ConvTranspose mixes up images and groups when group > 1; this runs
    each group alone."""

    op_domain = ""

    def _run(self, X, W, B=None, group=None, **attrs):
        group = group or 1
        if group == 1:
            return super()._run(X, W, B, group=1, **attrs)
        parts = [super(ConvTranspose, self)._run(x, w, b, group=1, **attrs)[0]
                 for x, w, b in zip(np.split(X, group, axis=1), np.split(W, group, axis=0),
                                    np.split(B, group) if B is not None else [None] * group)]
        return (np.concatenate(parts, axis=1),)


class Erf(OpRun):
    """NOTE: onnx 1.23's reference Erf returns float32 whatever its input (so does Gelu, made of it)."""

    op_domain = ""

    def _run(self, x):
        return (special.erf(x),)


ORACLE_OPS = [LRN, ConvTranspose, Erf]  # the reference evaluator's ops replaced


def to_double(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy computing in float64: float initializers, constants, casts and graph types."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT:
            graph.initializer[index].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.DOUBLE
            if attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == TensorProto.FLOAT:
                array = numpy_helper.to_array(attribute.t).astype(np.float64)
                attribute.t.CopyFrom(numpy_helper.from_array(array, attribute.t.name))
    return copy


class DoubleGraph:
    """A model run in float64; ``run`` gives every intermediate tensor.

    runtime="ort" runs it in ONNX Runtime (float32, values returned as float64) for the few cases the
    reference evaluator gets wrong; finite differences then need a coarser step and tolerance.
    """

    def __init__(self, model: onnx.ModelProto, runtime: str = "reference"):
        self.model = to_double(model)
        self.initializers = {t.name: numpy_helper.to_array(t) for t in self.model.graph.initializer}
        weights = set(self.initializers)
        self.input_names = [i.name for i in self.model.graph.input if i.name not in weights]
        if runtime == "ort":
            self.evaluator = OrtEvaluator(model)
        else:
            self.evaluator = ReferenceEvaluator(self.model, new_ops=ORACLE_OPS)

    def run(self, feeds: dict) -> dict:
        feeds = {name: np.asarray(value, np.float64) for name, value in feeds.items()}
        results = self.evaluator.run(None, feeds, intermediate=True)
        return {**{name: value for name, value in results.items() if value is not None}, **feeds}

    def objective(self, feeds: dict, seeds: dict) -> float:
        """sum over seeded tensors of seed * value: its gradient is what a backward pass from the seeds gives."""
        tensors = self.run(feeds)
        return float(sum((tensors[name] * seed).sum() for name, seed in seeds.items()))

    def gradients(self, feeds: dict, seeds: dict, sources=None, mode="grad", **options) -> dict:
        """Our backward pass from the seeds to every source (default: every graph input)."""
        values = types.MappingProxyType({**self.initializers, **self.run(feeds)})
        plan = GraphPlan(self.model, dtypes_of(values), "test.onnx")
        sources = frozenset(sources or self.input_names)
        steps = []
        for seed in seeds:  # one path per seed, merged in reverse topological order
            steps += [s for s in plan.path(seed, sources) if all(s.node is not t.node for t in steps)]
        steps.sort(key=lambda s: plan.order[id(s.node)], reverse=True)
        return walk(steps, values, dict(seeds), rules_for(mode, options.get("lrn_passthrough", False)), frozenset())

    def as_run(self, image: np.ndarray) -> "DoubleRun":
        return DoubleRun(self, image)


class OrtEvaluator:
    """The reference evaluator's run(None, feeds, intermediate=True), done by ONNX Runtime in float32."""

    def __init__(self, model: onnx.ModelProto):
        self.session = ort.InferenceSession(with_all_outputs(model).SerializeToString(),
                                            providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]

    def run(self, _, feeds: dict, intermediate: bool = True) -> dict:
        values = self.session.run(None, {k: v.astype(np.float32) for k, v in feeds.items()})
        return {name: v.astype(np.float64) if v.dtype.kind == "f" else v for name, v in zip(self.names, values)}


class DoubleRun:
    """What the public backward() reads of a forward run, backed by the float64 evaluator."""

    def __init__(self, graph: DoubleGraph, image: np.ndarray):
        self.model, self.initializers = graph.model, graph.initializers
        self.input_name = graph.input_names[0]
        self.tensors = graph.run({self.input_name: image})
        self.layer_names = tuple(n for n in self.tensors if self.tensors[n].dtype.kind == "f")
        self.where = "test"
        self.plan = GraphPlan(self.model, dtypes_of({**self.initializers, **self.tensors}), self.where)
        self.helper_session_options = None   # float64: the rules' NumPy paths, no helper sessions


def dtypes_of(values) -> dict:
    """tensor name -> dtype, what a GraphPlan is made from."""
    return {name: value.dtype for name, value in values.items()}


def central_differences(function, value: np.ndarray, indices, eps: float = 1e-6) -> np.ndarray:
    """d function / d value at the given flat indices (value is perturbed in a copy)."""
    result = []
    for index in indices:
        probe = value.copy()
        probe.flat[index] += eps
        up = function(probe)
        probe.flat[index] -= 2 * eps
        result.append((up - function(probe)) / (2 * eps))
    return np.array(result)


def sample_indices(size: int, count: int = 40, seed: int = 0) -> np.ndarray:
    if size <= count:
        return np.arange(size)
    return np.random.default_rng(seed).choice(size, count, replace=False)


def assert_matches_finite_differences(graph: DoubleGraph, feeds: dict, seeds: dict, sources=None,
                                      count: int = 40, rtol: float = 1e-6, eps: float = 1e-6) -> None:
    """Our gradient at every source equals central differences at ``count`` sampled elements."""
    sources = list(sources or graph.input_names)
    ours = graph.gradients(feeds, seeds, sources)
    values = {**feeds, **graph.initializers}
    for name in sources:
        value = np.asarray(values[name], np.float64)

        def function(probe, name=name):
            changed = dict(feeds)
            if name in graph.initializers:
                graph.evaluator = ReferenceEvaluator(_with_initializer(graph.model, name, probe), new_ops=ORACLE_OPS)
            else:
                changed[name] = probe
            return graph.objective(changed, seeds)

        indices = sample_indices(value.size, count)
        expected = central_differences(function, value, indices, eps)
        if name in graph.initializers:
            graph.evaluator = ReferenceEvaluator(graph.model, new_ops=ORACLE_OPS)
        got = ours.get(name)
        got = np.zeros(value.shape) if got is None else np.asarray(got).reshape(value.shape)
        assert got.dtype == np.float64
        scale = max(1e-3, np.abs(expected).max())
        np.testing.assert_allclose(got.flat[indices], expected, rtol=rtol, atol=rtol * scale, err_msg=name)


def _with_initializer(model: onnx.ModelProto, name: str, value: np.ndarray) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for tensor in copy.graph.initializer:
        if tensor.name == name:
            tensor.CopyFrom(numpy_helper.from_array(value, name))
    return copy


def one_node_model(op_type: str, inputs: list, data: tuple, attrs: dict, n_outputs: int = 1,
                   opset: int = OPSET) -> tuple:
    """A model of one node: inputs[i] is a graph input when i is in ``data``, else an initializer
    (None: an omitted optional input). Returns (model, feeds)."""
    names, graph_inputs, initializers, feeds = [], [], [], {}
    for index, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        name = f"in{index}"
        names.append(name)
        value = np.asarray(value)
        if index in data:
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, value.shape))
            feeds[name] = value.astype(np.float64)
        else:
            stored = value.astype(np.float32) if value.dtype.kind == "f" else value
            initializers.append(numpy_helper.from_array(stored, name))
    outputs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outputs, name=f"the_{op_type.lower()}", **attrs)
    graph = helper.make_graph([node], "one", graph_inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              initializer=initializers)
    return make_model(graph, opset), feeds


def make_model(graph, opset: int = OPSET) -> onnx.ModelProto:
    # IR 8: onnx 1.23 writes IR 14 by default, newer than ONNX Runtime 1.31 reads
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def check_op(op_type: str, *inputs, data=(0,), attrs=None, n_outputs: int = 1, opset: int = OPSET,
             runtime: str = "reference") -> None:
    """One op's vanilla gradient against finite differences, from random output diffs."""
    model, feeds = one_node_model(op_type, list(inputs), data, attrs or {}, n_outputs, opset)
    graph = DoubleGraph(model, runtime)
    tensors = graph.run(feeds)
    rng = np.random.default_rng(0)
    seeds = {f"out{i}": rng.standard_normal(tensors[f"out{i}"].shape) for i in range(n_outputs)}
    coarse = dict(rtol=3e-3, eps=1e-2) if runtime == "ort" else {}
    assert_matches_finite_differences(graph, feeds, seeds, **coarse)
