"""Records a backward pass as ONNX nodes: fresh tensor names, constants and the few node shapes that
change across opsets (the graph backward is built at opset 16 or later, where Unsqueeze, Squeeze,
ReduceSum and Split take their axes and sizes as inputs)."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from app.errors import DeepVisError


SEED = "backward/seed"   # the pass's seed, an input of the graph
UNIT = "backward/unit"   # the seed's one non-zero channel (int64 [1]), an input when the seed is one unit's


class CannotRecord(DeepVisError):
    """The graph cannot express this node's backward rule: the pass falls back to NumPy."""


class Recorder:
    """The nodes and constants of a backward pass, in the order they were recorded."""

    def __init__(self, prefix: str = "backward/"):
        self.prefix = prefix
        self.nodes = []
        self.constants = []
        self._count = 0

    def fresh(self, hint: str = "t") -> str:
        self._count += 1
        return f"{self.prefix}{hint}{self._count}"

    def node(self, op_type: str, inputs: list, outputs: int = 1, **attrs):
        """One node; its output name (a list of names when outputs > 1)."""
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=names[0], **attrs))
        return names[0] if outputs == 1 else names

    def constant(self, value, dtype=np.float32) -> str:
        name = self.fresh("const")
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, values) -> str:
        return self.constant(np.asarray(values, np.int64).reshape(-1), np.int64)

    # -- the arithmetic most rules share -----------------------------------------------------
    def zeros_like(self, tensor: str) -> str:
        return self.node("ConstantOfShape", [self.node("Shape", [tensor])])

    def masked(self, condition: str, diff: str) -> str:
        """diff where the condition holds, 0 elsewhere: the diff times the condition as 0 / 1 (ONNX
        Runtime's Where took 1.6-2x the time of Cast and Mul on a 96 x 112 x 112 map)."""
        return self.node("Mul", [diff, self.node("Cast", [condition], to=TensorProto.FLOAT)])

    def scaled(self, diff: str, factor) -> str:
        return diff if np.all(np.asarray(factor) == 1) else self.node("Mul", [diff, self.constant(factor)])

    def like(self, diff: str, tensor: str) -> str:
        """diff reshaped like ``tensor`` (same number of elements)."""
        return self.node("Reshape", [diff, self.node("Shape", [tensor])])

    def unbroadcast(self, diff: str, diff_shape: tuple, shape: tuple) -> str:
        """The diff summed over the axes along which an input of ``shape`` was broadcast."""
        diff_shape, shape = tuple(diff_shape), tuple(shape)
        if diff_shape == shape:
            return diff
        extra = len(diff_shape) - len(shape)
        axes = list(range(extra)) + [extra + i for i, n in enumerate(shape)
                                     if n == 1 and diff_shape[extra + i] != 1]
        if axes:
            diff = self.node("ReduceSum", [diff, self.ints(axes)], keepdims=1)
        return self.node("Reshape", [diff, self.ints(shape)])

    def unsqueeze(self, tensor: str, axes) -> str:
        return self.node("Unsqueeze", [tensor, self.ints(axes)])

    def squeeze(self, tensor: str, axes) -> str:
        return self.node("Squeeze", [tensor, self.ints(axes)])
