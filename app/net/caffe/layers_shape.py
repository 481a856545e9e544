"""Layers that combine, split or rearrange blobs: Eltwise, Concat, Slice, Split, Flatten, Reshape,
Permute, Crop."""
import math

import numpy as np

from app.net.caffe.registry import LayerContext, converts

_PROD, _SUM, _MAX = 0, 1, 2


@converts("Eltwise")
def eltwise(ctx: LayerContext) -> list:
    p = ctx.param("eltwise_param")
    if p.operation == _PROD:
        return [ctx.output("Mul", ctx.inputs)] if len(ctx.inputs) == 2 else _chain(ctx, "Mul")
    if p.operation == _MAX:
        return [ctx.output("Max", ctx.inputs)]
    coefficients = list(p.coeff)
    if coefficients and len(coefficients) != len(ctx.inputs):
        ctx.fail(f"{len(coefficients)} coeff values for {len(ctx.inputs)} bottoms")
    terms = ctx.inputs
    if any(c != 1 for c in coefficients):
        terms = [ctx.temp("Mul", [x, ctx.const(f"coeff{i}", c)], f"term{i}")
                 for i, (x, c) in enumerate(zip(ctx.inputs, coefficients))]
    return [ctx.output("Sum", terms)]


def _chain(ctx: LayerContext, op: str) -> list:
    product = ctx.inputs[0]
    for i, x in enumerate(ctx.inputs[1:-1]):
        product = ctx.temp(op, [product, x], f"partial{i}")
    return [ctx.output(op, [product, ctx.inputs[-1]])]


@converts("Concat")
def concat(ctx: LayerContext) -> list:
    p = ctx.param("concat_param")
    axis = p.concat_dim if p.HasField("concat_dim") else p.axis
    return [ctx.output("Concat", ctx.inputs, axis=axis)]


@converts("Slice")
def slice_layer(ctx: LayerContext) -> list:
    p = ctx.param("slice_param")
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    size, count = ctx.shape()[axis], len(ctx.layer.tops)
    if p.slice_point:
        bounds = [0] + list(p.slice_point) + [size]
        if len(bounds) != count + 1 or bounds != sorted(bounds):
            ctx.fail(f"slice_point {list(p.slice_point)} does not split {size} into {count} tops")
        sizes = np.diff(bounds)
    else:
        if size % count:
            ctx.fail(f"axis {axis} of size {size} does not split evenly into {count} tops")
        sizes = [size // count] * count
    return ctx.graph.multi_node("Split", [ctx.x, ctx.const("split", sizes)], ctx.layer.tops, axis=axis)


@converts("Split")
def split(ctx: LayerContext) -> list:
    return [ctx.graph.node("Identity", [ctx.x], top) for top in ctx.layer.tops]


@converts("Flatten")
def flatten(ctx: LayerContext) -> list:
    p = ctx.param("flatten_param")
    shape = ctx.shape()
    axis, end = p.axis % len(shape), p.end_axis % len(shape)
    new_shape = [0] * axis + [int(np.prod(shape[axis:end + 1]))] + list(shape[end + 1:])
    return [ctx.output("Reshape", [ctx.x, ctx.const("shape", new_shape)])]


@converts("Reshape")
def reshape(ctx: LayerContext) -> list:
    p = ctx.param("reshape_param")
    shape = list(ctx.shape())
    axis = p.axis % (len(shape) + 1)
    end = len(shape) if p.num_axes == -1 else axis + p.num_axes
    # Caffe's 0 copies the input dim at the same place; ONNX's 0 does the same for the full shape.
    middle = [(0 if axis == 0 else shape[axis + i]) if d == 0 else int(d) for i, d in enumerate(p.shape.dim)]
    if axis == 0 and middle and middle[0] == shape[0]:
        middle[0] = 0  # a batch size written into the file: copy the batch, so any batch runs
    new_shape = [0] * axis + middle + shape[end:]
    resolved = [shape[i] if d == 0 else d for i, d in enumerate(new_shape)]
    known, count = math.prod(d for d in resolved if d != -1), math.prod(shape)
    if known < 1 or (count % known if -1 in resolved else count != known):
        ctx.fail(f"reshape of {tuple(shape)} to {tuple(resolved)}: the counts of values differ")
    return [ctx.output("Reshape", [ctx.x, ctx.const("shape", new_shape)])]


@converts("Permute")
def permute(ctx: LayerContext) -> list:
    order = list(ctx.param("permute_param").order)
    rank = len(ctx.shape())
    order += [axis for axis in range(rank) if axis not in order]
    if sorted(order) != list(range(rank)):
        ctx.fail(f"order {order} is not a permutation of {rank} axes")
    return [ctx.output("Transpose", [ctx.x], perm=order)]


@converts("Crop")
def crop(ctx: LayerContext) -> list:
    p = ctx.param("crop_param")
    shape, reference = ctx.shape(0), ctx.shape(1)
    axis = p.axis % len(shape)
    axes = list(range(axis, len(shape)))
    offsets = list(p.offset) or [0]
    starts = [offsets[0] if len(offsets) == 1 else offsets[i] for i in range(len(axes))]
    ends = [start + reference[a] for start, a in zip(starts, axes)]
    for start, end, a in zip(starts, ends, axes):
        if end > shape[a]:
            ctx.fail(f"crop of {reference[a]} at offset {start} exceeds axis {a} of size {shape[a]}")
    inputs = [ctx.x, ctx.const("starts", starts), ctx.const("ends", ends), ctx.const("axes", axes)]
    return [ctx.output("Slice", inputs)]
