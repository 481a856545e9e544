"""Receptive fields of every layer of any ONNX DAG, worked out from the graph and checked by probing.

A map position (y, x) of a layer sees input rows [y * stride - padding, y * stride - padding + size)
(and columns alike); the box may run past the image, where the net saw padding. Rules per op (the
table RULES; how each op reads positions is its trait in app/net/ops.py):

- windowed ops (Conv, pools, ConvTranspose, SpaceToDepth, DepthToSpace): the usual recurrence
  size += (kernel - 1) * stride, padding += pad_begin * stride, stride *= step (a transposed conv
  or an upsampling divides the stride, which may then be fractional; boxes are rounded outwards);
- Resize / Upsample: stride / factor, widened to two input positions each side of the sampling
  point (the taps of nearest, linear and cubic modes), so the box bounds what the output reads;
- Pad and spatial Slice shift the field; per-position ops (activations, BN, LRN, Dropout, ...) keep it;
- merges (Add, Mul, Concat over channels, ...): the union of the inputs' extents when their strides
  agree; constants take no part;
- anything that mixes all positions (global pools, Flatten, Gemm, instance / layer norms, strides
  that disagree in a merge, unknown ops): the whole input, returned as stride 0, padding 0 and the
  input's size, so ``box`` gives the whole image whatever the position. Vector layers are such.
"""
import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from app.errors import DeepVisError
from app.net import onnx_graph, ops
from app.net.autodiff.geometry import SAME, same_padding


@dataclass(frozen=True)
class ReceptiveField:
    """size, stride, padding: (rows, columns) in input pixels; stride (0, 0) = the whole input."""

    size: tuple
    stride: tuple
    padding: tuple

    @property
    def whole(self) -> bool:
        return self.stride == (0, 0)

    def box(self, y: int, x: int) -> tuple:
        """(y0, y1, x0, x1) in input pixels, end exclusive; may run past the image."""
        y0, x0 = y * self.stride[0] - self.padding[0], x * self.stride[1] - self.padding[1]
        return (math.floor(y0), math.ceil(y0 + self.size[0]), math.floor(x0), math.ceil(x0 + self.size[1]))


def _tidy(value: float):
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _field(size, stride, padding) -> ReceptiveField:
    return ReceptiveField(tuple(_tidy(v) for v in size), tuple(_tidy(v) for v in stride),
                          tuple(_tidy(v) for v in padding))


def whole_input(input_size: tuple) -> ReceptiveField:
    return ReceptiveField(tuple(input_size), (0, 0), (0, 0))


class _Graph:
    """The facts about a model the rules read: attributes, constants, static shapes."""

    def __init__(self, model: onnx.ModelProto):
        inferred = onnx_graph.inferred_shapes(model)
        self.shapes = {}
        for value in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
            dims = value.type.tensor_type.shape.dim
            self.shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        self.constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        for name, array in self.constants.items():
            self.shapes.setdefault(name, list(array.shape))

    def rank(self, name: str):
        shape = self.shapes.get(name)
        return None if shape is None else len(shape)

    def spatial(self, name: str) -> tuple:
        shape = self.shapes.get(name) or []
        return tuple(shape[2:4]) if len(shape) == 4 else (None, None)


def _window(node, graph: _Graph, attrs: dict) -> tuple:
    """(kernel, strides, dilations, pad_begin) of a windowed op, each (rows, columns)."""
    kernel = attrs.get("kernel_shape")
    if kernel is None:
        kernel = (graph.shapes.get(node.input[ops.trait(node.op_type).window.kernel_input]) or [])[2:]
    if len(kernel) != 2:
        raise DeepVisError(f"model: node {node.name or node.output[0]}: cannot tell its 2-D kernel size")
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    pads = tuple(attrs.get("pads", (0, 0, 0, 0)))[:2]
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in SAME:
        sizes, outs = graph.spatial(node.input[0]), graph.spatial(node.output[0])
        pads = [same_padding(auto_pad, sizes[axis], kernel[axis], strides[axis], dilations[axis], outs[axis])[0]
                if sizes[axis] else 0 for axis in range(2)]
    elif auto_pad == "VALID":
        pads = (0, 0)
    return tuple(kernel), strides, dilations, tuple(pads)


def _through(field: ReceptiveField, kernel, step, pad_begin, upsample=(1, 1)) -> ReceptiveField:
    """A window of ``kernel`` input positions every ``step``, starting ``pad_begin`` before,
    after an upsampling of the input by ``upsample`` (ConvTranspose, DepthToSpace, Resize)."""
    size, stride, padding = [], [], []
    for axis in range(2):
        unit = field.stride[axis] / upsample[axis]  # input pixels per (upsampled) position
        size.append(field.size[axis] + (kernel[axis] - 1) * unit)
        padding.append(field.padding[axis] + pad_begin[axis] * unit)
        stride.append(unit * step[axis])
    return _field(size, stride, padding)


def _merge(fields: list, input_size: tuple):
    """Union of the inputs' extents (None: constants, ignored)."""
    fields = [f for f in fields if f is not None]
    if not fields:
        return None
    if any(f.whole for f in fields) or len({f.stride for f in fields}) > 1:
        return whole_input(input_size)
    starts = [tuple(-p for p in f.padding) for f in fields]
    ends = [tuple(s + k for s, k in zip(start, f.size)) for start, f in zip(starts, fields)]
    start = tuple(min(s[a] for s in starts) for a in range(2))
    end = tuple(max(e[a] for e in ends) for a in range(2))
    return _field([end[a] - start[a] for a in range(2)], fields[0].stride, [-s for s in start])


def _windowed(node, attrs: dict, graph: _Graph, source: ReceptiveField, input_size: tuple):
    kernel, strides, dilations, pads = _window(node, graph, attrs)
    effective = tuple(d * (k - 1) + 1 for d, k in zip(dilations, kernel))
    return _through(source, effective, strides, pads)


def _transposed(node, attrs: dict, graph: _Graph, source: ReceptiveField, input_size: tuple):
    kernel, strides, dilations, pads = _window(node, graph, attrs)
    effective = tuple(d * (k - 1) + 1 for d, k in zip(dilations, kernel))
    # output o reads inputs i with i * s = o + pad - j * d: a window of (k_eff - 1) / s + 1 inputs
    return _through(source, effective, (1, 1), tuple(k - 1 - p for k, p in zip(effective, pads)), strides)


def _space_to_depth(node, attrs: dict, graph: _Graph, source: ReceptiveField, input_size: tuple):
    block = (attrs["blocksize"],) * 2
    return _through(source, block, block, (0, 0))


def _resized(node, attrs: dict, graph: _Graph, source: ReceptiveField, input_size: tuple):
    before, after = graph.spatial(node.input[0]), graph.spatial(node.output[0])
    if None in before or None in after:
        return whole_input(input_size)
    factor = tuple(a / b for a, b in zip(after, before))
    if node.op_type == "DepthToSpace":  # output o copies input o // f: like a transposed conv, kernel f
        return _through(source, factor, (1, 1), tuple(f - 1 for f in factor), factor)
    # output o samples input u = (o + 0.5) / f - 0.5; the taps of nearest, linear and cubic lie within 2 of u
    return _through(source, tuple(4 * f + 1 for f in factor), (1, 1), tuple(2.5 * f - 0.5 for f in factor), factor)


def _padded(node, attrs: dict, graph: _Graph, source: ReceptiveField, input_size: tuple):
    pads = attrs.get("pads")
    if pads is None and len(node.input) > 1:
        pads = graph.constants.get(node.input[1])
    if pads is None or len(pads) != 8:
        return whole_input(input_size)
    return _through(source, (1, 1), (1, 1), (int(pads[2]), int(pads[3])))


def _sliced(node, attrs: dict, graph: _Graph, source: ReceptiveField, input_size: tuple):
    values = [graph.constants.get(name) if name else None for name in node.input[1:5]]
    if any(v is None for v in values[:2]) or (len(node.input) > 3 and values[2] is None):
        return whole_input(input_size)
    starts = values[0]  # the ends need only be constants: the starts, steps and output size place the rest
    axes = values[2] if len(values) > 2 and values[2] is not None else np.arange(len(starts))
    steps = values[3] if len(values) > 3 and values[3] is not None else np.ones(len(starts), int)
    begin, step = [0, 0], [1, 1]
    sizes = graph.spatial(node.input[0])
    for start, axis, stride in zip(starts, axes, steps):
        axis = int(axis) % 4
        if axis < 2:
            continue
        if stride < 0 or sizes[axis - 2] is None:
            return whole_input(input_size)
        begin[axis - 2] = -int(min(start + sizes[axis - 2] if start < 0 else start, sizes[axis - 2]))
        step[axis - 2] = int(stride)
    return _through(source, (1, 1), step, begin)


# op type -> the field of its output from its first input's (ops whose output positions read their
# own input positions take the union of their inputs' fields; any other op sees the whole input)
RULES = {
    **dict.fromkeys(ops.op_types(positions=ops.WINDOW), _windowed),
    "ConvTranspose": _transposed,
    "SpaceToDepth": _space_to_depth,
    "DepthToSpace": _resized,
    "Resize": _resized,
    "Upsample": _resized,
    "Pad": _padded,
    "Slice": _sliced,
}


def _node_field(node, graph: _Graph, fields: dict, input_size: tuple):
    """The receptive field of ``node``'s first output from its inputs' fields."""
    inputs = [fields.get(name) for name in node.input if name]
    if all(f is None for f in inputs):
        return None
    if graph.rank(node.output[0]) != 4:
        return whole_input(input_size)
    if ops.reads_own_position(node):
        return _merge(inputs, input_size)
    source, rule = inputs[0], RULES.get(node.op_type)
    if source is None or source.whole or rule is None:
        return whole_input(input_size)
    return rule(node, ops.attributes(node), graph, source, input_size)


def graph_fields(model: onnx.ModelProto, input_name: str, input_size: tuple) -> dict:
    """Receptive field of every tensor of ``model`` that depends on the input: tensor -> field."""
    graph = _Graph(model)
    fields = {input_name: ReceptiveField((1, 1), (1, 1), (0, 0))}
    for node in model.graph.node:
        field = _node_field(node, graph, fields, tuple(input_size))
        if field is not None:
            for name in node.output:
                fields[name] = field
    return fields


def receptive_fields(net) -> dict:
    """layer name -> ReceptiveField for every layer of ``net`` (vector layers: the whole input)."""
    fields = graph_fields(net.model, net.input_name, net.input_shape[1:])
    return {layer.name: fields.get(layer.name, whole_input(net.input_shape[1:])) for layer in net.layers}


# -- probing: which feature positions change when one input row (column) changes -----------------
def _changed_positions(net, axis: int, lines: list, batch: int, seed: int) -> dict:
    """layer -> bool (len(lines), positions): did changing input row (axis 0) / column (axis 1)
    ``lines[i]`` change any channel of the layer at that row / column?"""
    rng = np.random.default_rng(seed)
    height, width = net.input_shape[1:]
    base, other = net.preprocess([rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2)])
    changed = {}
    for start in range(0, len(lines), batch):
        chunk = lines[start:start + batch]
        inputs = np.repeat(base[None], len(chunk) + 1, axis=0)  # the unchanged input runs in the same batch
        for row, line in enumerate(chunk, 1):
            index = (row, slice(None), line) if axis == 0 else (row, slice(None), slice(None), line)
            inputs[index] = other[index[1:]]
        for layer, value in net.forward(inputs).items():
            if value.ndim != 4:
                continue
            moved = (value[1:] != value[:1]).any(axis=(1, 3 - axis))
            changed.setdefault(layer, []).append(moved)
    return {layer: np.concatenate(parts) for layer, parts in changed.items()}


def expected_positions(field: ReceptiveField, axis: int, lines: list, positions: int, image: int) -> np.ndarray:
    """What probing should see: bool (len(lines), positions), the line inside the position's box."""
    boxes = [field.box(p, 0)[0:2] if axis == 0 else field.box(0, p)[2:4] for p in range(positions)]
    lines = np.asarray(lines)[:, None]
    starts = np.array([max(b[0], 0) for b in boxes])[None]
    ends = np.array([min(b[1], image) for b in boxes])[None]
    return (lines >= starts) & (lines < ends)


def probe(net, lines=None, batch: int = 16, seed: int = 0) -> dict:
    """Observed receptive fields through the real net: map layer -> {"rows": bool (len(lines), H),
    "cols": bool (len(lines), W)}, True where changing that input row / column changed that
    position. lines: input rows / columns to change (default: all)."""
    height, width = net.input_shape[1:]
    row_lines = list(range(height)) if lines is None else [v for v in lines if v < height]
    col_lines = list(range(width)) if lines is None else [v for v in lines if v < width]
    rows = _changed_positions(net, 0, row_lines, batch, seed)
    cols = _changed_positions(net, 1, col_lines, batch, seed)
    return {layer: {"rows": rows[layer], "cols": cols[layer], "row_lines": row_lines, "col_lines": col_lines}
            for layer in rows}


def disagreements(net, fields: dict, probed: dict) -> dict:
    """layer -> number of (line, position) pairs where probing and the analytic box disagree."""
    height, width = net.input_shape[1:]
    counts = {}
    for layer, seen in probed.items():
        field = fields[layer]
        rows = expected_positions(field, 0, seen["row_lines"], seen["rows"].shape[1], height)
        cols = expected_positions(field, 1, seen["col_lines"], seen["cols"].shape[1], width)
        counts[layer] = int((rows != seen["rows"]).sum() + (cols != seen["cols"]).sum())
    return counts
