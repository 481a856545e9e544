"""What a backward rule sees of one node, and the helpers most rules share.

A rule is a function ``rule(op) -> sequence of input diffs`` (aligned with the node's inputs; None
where an input gets no diff, trailing entries may be left out). Rules only read ``op``; they never
modify its arrays in place, and they keep the dtype of the values they are given (float32 in normal
runs, float64 in the finite-difference tests).
"""
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np


@dataclass
class Op:
    """One graph node during a backward pass."""

    node: object        # the onnx NodeProto (name, op_type, input and output names)
    attrs: dict         # attribute name -> Python value (strings decoded)
    opset: int          # opset version of the node's domain
    inputs: list        # forward values of the inputs (None for an absent optional input)
    outputs: list       # forward values of the outputs
    dys: list           # diffs of the outputs, None where none arrived
    wants: tuple        # per input: is its diff needed
    seeded: bool = False  # the output diff is the pass's seed as given (often one channel alone)
    # makes the options of a rule's own ONNX Runtime sessions (the depthwise correlations): the
    # run's, on one thread like the rest of the walk; None keeps the rules to NumPy
    session_options: Optional[Callable[[], object]] = None

    @property
    def x(self) -> np.ndarray:
        return self.inputs[0]

    @property
    def y(self) -> np.ndarray:
        return self.outputs[0]

    @property
    def dy(self) -> np.ndarray:
        """The diff of the first output (zeros when diffs reached only other outputs)."""
        return self.dys[0] if self.dys[0] is not None else self.output_diff(0)

    def input(self, index: int, default=None):
        """Value of an optional input, ``default`` when absent."""
        if index < len(self.inputs) and self.inputs[index] is not None:
            return self.inputs[index]
        return default

    def with_dy(self, dy: np.ndarray) -> "Op":
        """The same node with another diff at its first output (what the modes rewrite)."""
        return Op(self.node, self.attrs, self.opset, self.inputs, self.outputs, [dy] + self.dys[1:], self.wants,
                  self.seeded, self.session_options)

    def output_diff(self, index: int) -> np.ndarray:
        """The diff of an output, zeros when none arrived."""
        dy = self.dys[index]
        if dy is None:
            dy = np.zeros(self.outputs[index].shape, self.outputs[index].dtype)
        return dy


def unbroadcast(diff: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a diff over the axes along which an input of ``shape`` was broadcast."""
    shape = tuple(shape)
    if diff.shape == shape:
        return diff
    extra = diff.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape) if n == 1 and diff.shape[extra + i] != 1)
    return diff.sum(axis=axes, keepdims=True).reshape(shape) if axes else diff.reshape(shape)


def channel_shaped(vector: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast along axis 1 of an N x C x ... tensor."""
    return np.asarray(vector).reshape((1, -1) + (1,) * (ndim - 2))


def ints(values) -> list:
    """A shape-like input or attribute (array or list) as a list of Python ints."""
    return [int(v) for v in np.asarray(values).reshape(-1)]
