"""Fusion barriers: a forward computed inside a model of our own (find_maxes's reductions, a step of
activation maximization) gives the same numbers as Net.forward, which returns every tensor.

ONNX Runtime fuses an op with its single reader (a conv with the residual Add it accumulates into,
a conv with a batch norm) and then runs other kernels, which round differently; Net.forward's
tensors are all outputs, so nothing there is fused. Each tensor with one reader therefore gets a
second one (a GlobalMaxPool, which reads it in ORT's blocked layout, or the tensor itself as an
output when it has no spatial axes) so that the same kernels run. One fusion is let through: a conv
with a clamping activation (Relu, Clip) computes the same numbers fused, and twice as fast, as long
as what reads the activation does not sum in an order that depends on the layout (an average pool
does).
"""
from onnx import helper

CLAMPS = ("Relu", "Clip")  # the same numbers fused into the conv before them as run after it
# readers whose result does not depend on ORT's layout of their input: elementwise, max, or convs
# (ORT runs a conv in its blocked layout whatever layout its input came in); Shape reads no values
LAYOUT_FREE = ("Conv", "Relu", "Clip", "Add", "Sub", "Mul", "MaxPool", "GlobalMaxPool", "Concat", "Greater",
               "Less", "Shape")
SUFFIX = "::barrier"  # appended to a tensor's name for the barrier that reads it


def fuses_exactly(name: str, readers: dict) -> bool:
    """Whether ``name``'s one reader is a clamp whose own readers are all layout-free."""
    (clamp,) = readers[name]
    return clamp.op_type in CLAMPS and all(reader.op_type in LAYOUT_FREE for reader in readers.get(clamp.output[0], ()))


def needs_barrier(name: str, readers: dict, dtype) -> bool:
    """Whether float tensor ``name`` (``dtype``: its numpy dtype, None when unknown) would be fused
    with its one reader into kernels that round differently."""
    return (len(readers.get(name, ())) == 1 and not fuses_exactly(name, readers)
            and dtype is not None and dtype.kind == "f")


def barrier(name: str, rank: int) -> tuple:
    """(nodes, output): a second reader of ``name``, whose output the model must return (ORT drops
    what no output needs)."""
    if rank < 3:
        return [], name
    output = name + SUFFIX
    return [helper.make_node("GlobalMaxPool", [name], [output], name=output)], output
