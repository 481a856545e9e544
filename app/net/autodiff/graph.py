"""Which nodes a backward pass visits: the ones on a path from a source to the seed tensor.

Diffs flow only through floating-point tensors computed from a source (the image input, or weights
whose gradient is asked for). Shape arithmetic (Shape, Gather on shapes, Cast, Constant,
ConstantOfShape, Concat of shape vectors...) yields integers or depends on no source, so it is never
visited; Reshape's shape input and every other such input take their values from the forward run.
"""
from dataclasses import dataclass

import onnx

from app.errors import DeepVisError
from app.net.autodiff.rules import RULES
from app.net.ops import attributes

DEFAULT_OPSET = 1


@dataclass(frozen=True)
class Step:
    """One node to visit, with what is needed of it."""

    node: onnx.NodeProto
    attrs: dict
    opset: int
    wants: tuple  # per input: does a diff flow back to it


class GraphPlan:
    """A model's nodes indexed for backward passes; paths are cached per (seed, sources). Threads
    may share one: the caches only ever gain complete entries (or are replaced whole)."""

    def __init__(self, model: onnx.ModelProto, dtypes, where: str):
        """dtypes: tensor name -> the numpy dtype of its value in a forward run (initializers included);
        where: the model's file."""
        self.model = model
        self.nodes = list(model.graph.node)
        self.where = where
        self.producer = {name: node for node in self.nodes for name in node.output if name}
        self.order = {id(node): i for i, node in enumerate(self.nodes)}
        self.float_tensors = frozenset(name for name, dtype in dtypes.items() if dtype.kind == "f")
        self.opsets = {(o.domain or ""): o.version for o in model.opset_import}
        self.opsets.setdefault("", DEFAULT_OPSET)
        self._attrs = {}
        self._paths = {}

    def flow(self, sources: frozenset) -> frozenset:
        """Every float tensor computed (directly or not) from the sources, the sources included."""
        reached = set(sources)
        for node in self.nodes:
            if any(name in reached for name in node.input):
                reached.update(name for name in node.output if name in self.float_tensors)
        return frozenset(reached)

    def path(self, seed: str, sources: frozenset) -> list:
        """Steps from the seed back to the sources, in reverse topological order."""
        key = (seed, sources)
        path = self._paths.get(key)
        if path is None:
            path = self._find_path(seed, sources)
            paths = self._paths if len(self._paths) <= 64 else {}
            paths[key] = path
            self._paths = paths
        return path

    def _find_path(self, seed: str, sources: frozenset) -> list:
        reached = self.flow(sources)
        visited, stack = {}, ([seed] if seed in reached else [])
        while stack:
            node = self.producer.get(stack.pop())
            if node is None or id(node) in visited:
                continue
            visited[id(node)] = node
            stack.extend(name for name in node.input if name in reached)
        nodes = sorted(visited.values(), key=lambda node: self.order[id(node)], reverse=True)
        return [self._step(node, reached) for node in nodes]

    def _step(self, node, reached: frozenset) -> Step:
        domain = node.domain if node.domain != "ai.onnx" else ""
        if node.op_type not in RULES or domain:
            label = f"{domain}." if domain else ""
            raise DeepVisError(f"{self.where}: node {node.name or node.output[0]!r}: no backward rule for op "
                               f"{label}{node.op_type}; backprop cannot cross it (forward is unaffected)")
        attrs = self._attrs.get(id(node))
        if attrs is None:
            attrs = self._attrs[id(node)] = attributes(node)
        wants = tuple(name in reached for name in node.input)
        return Step(node, attrs, self.opsets.get(domain, DEFAULT_OPSET), wants)


def arrived(step: Step, diffs: dict, keep: frozenset, kept: dict):
    """The diffs that reached the step's outputs, taken out of ``diffs`` (those of ``keep`` tensors
    also go to ``kept``); None when none did, and the step is skipped."""
    outputs = step.node.output
    dys = [diffs.pop(name, None) for name in outputs]
    kept.update((name, dy) for name, dy in zip(outputs, dys) if dy is not None and name in keep)
    return None if all(dy is None for dy in dys) else dys


def send_back(step: Step, diffs: dict, input_diffs, add) -> None:
    """Add a step's input diffs to what its inputs already received (``add(previous, diff)``)."""
    for name, wanted, diff in zip(step.node.input, step.wants, input_diffs):
        if wanted and diff is not None:
            previous = diffs.get(name)
            diffs[name] = diff if previous is None else add(previous, diff)
