"""Reading an ONNX file safely and finding the layers a user thinks of.

A "layer" is the output tensor of a node whose op a researcher would want to look at (convolutions,
activations, pooling, fully connected, merges, normalisation, softmax: the ``layer`` trait in
ops.py); plumbing ops (Reshape, Shape, Gather, Constant...) are not layers but their tensors are
still computed and kept. A model
may also name its layers itself in the metadata entry LAYERS_METADATA_KEY (a JSON list of tensor
names): converted Caffe nets list every Caffe layer's output there, Flatten and Dropout included.
"""
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import uses_external_data

from app.errors import DeepVisError
from app.net.ops import trait

LAYERS_METADATA_KEY = "deepvis.layers"


@dataclass(frozen=True)
class Layer:
    """One viewable tensor: shape is per sample (no batch axis)."""

    name: str
    shape: tuple
    kind: str  # "map" (C x H x W), "vector" (C,) or "other" (any other rank)
    op_type: str

    @property
    def channels(self) -> int:
        return int(self.shape[0]) if self.shape else 1


def kind_of(shape: tuple) -> str:
    return {3: "map", 1: "vector"}.get(len(shape), "other")


def load_model(path) -> onnx.ModelProto:
    """Load an ONNX file, refusing external data that points outside the model's folder."""
    path = Path(path)
    if not path.is_file():
        raise DeepVisError(f"{path}: no such model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as error:
        raise DeepVisError(f"{path}: not an ONNX model ({type(error).__name__})") from None
    if not model.graph.node:
        raise DeepVisError(f"{path}: not an ONNX model (no graph nodes)")
    _check_external_data(model, path)
    if any(uses_external_data(t) for t in model.graph.initializer):
        onnx.load_external_data_for_model(model, str(path.parent))
    return model


def _check_external_data(model, path: Path) -> None:
    """Every initializer's bytes: inline ones as many as its dims need, external ones inside the
    model's folder and within their file; checked before any is read (a header may claim terabytes)."""
    folder = path.parent.resolve()
    for tensor in model.graph.initializer:
        where = f"{path}: initializer {tensor.name}"
        needed = _tensor_bytes(tensor, where)
        if not uses_external_data(tensor):
            if tensor.HasField("raw_data") and len(tensor.raw_data) != needed:
                raise DeepVisError(f"{where}: holds {len(tensor.raw_data)} bytes, its dims "
                                   f"{list(tensor.dims)} need {needed}")
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        target = (folder / location).resolve()
        if folder not in target.parents:
            raise DeepVisError(
                f"{where}: external data {location!r} lies outside the model's folder; refusing to read it")
        if not target.is_file():
            raise DeepVisError(f"{where}: external data file {location!r} is missing")
        try:
            offset, length = int(entries.get("offset", 0)), int(entries.get("length", needed))
        except ValueError:
            raise DeepVisError(f"{where}: external data offset or length is not a number") from None
        if length != needed or offset < 0 or offset + length > target.stat().st_size:
            raise DeepVisError(f"{where}: claims {length} bytes at offset {offset} of {location!r} "
                               f"({target.stat().st_size} bytes); its dims {list(tensor.dims)} need {needed}")


def _tensor_bytes(tensor, where: str) -> int:
    if min(tensor.dims, default=0) < 0:
        raise DeepVisError(f"{where}: negative dims {list(tensor.dims)}")
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, ValueError, TypeError):
        raise DeepVisError(f"{where}: unknown data type {tensor.data_type}") from None
    return math.prod(tensor.dims) * itemsize


def graph_input(model) -> onnx.ValueInfoProto:
    """The one real input (old exporters also list weights among graph inputs)."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise DeepVisError(f"model has {len(inputs)} image inputs ({names}); one is supported")
    return inputs[0]


def static_dims(value_info) -> list:
    """Dims of a value's shape, None where symbolic or unknown."""
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]


def runnable(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy ORT runs well at any batch size.

    Old exporters list weights among the graph inputs, which stops ORT from folding them as
    constants; Caffe deploy files often fix the batch at 10.
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    weights = {t.name for t in copy.graph.initializer}
    real_inputs = [i for i in copy.graph.input if i.name not in weights]
    del copy.graph.input[:]
    copy.graph.input.extend(real_inputs)
    for value in [graph_input(copy)] + list(copy.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            dims[0].dim_param = "N"
    return copy


def with_input_size(model: onnx.ModelProto, size: tuple) -> onnx.ModelProto:
    """``model`` (changed in place) taking images of ``size`` (height, width): the input's spatial
    dims that the file fixes otherwise become symbolic."""
    dims = graph_input(model).type.tensor_type.shape.dim
    for dim, length, name in zip(dims[2:], size, ("height", "width")):
        if dim.dim_value != length:
            dim.Clear()
            dim.dim_param = name
    return model


SMALL_CONSTANT = 1024   # elements: shape and index constants, whose values shape inference may read


def inferred_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` shape-inferred without its weights: a copy whose large initializers are graph inputs
    of the same type and shape. Shape inference copies a model several times over, and VGG16's
    weights alone are 553 MB."""
    skeleton = onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import,
                               functions=model.functions)
    graph = skeleton.graph
    graph.name = model.graph.name
    for field in ("node", "input", "output", "value_info"):
        getattr(graph, field).extend(getattr(model.graph, field))
    declared = {value.name for value in graph.input}
    for weight in model.graph.initializer:
        if np.prod(weight.dims) <= SMALL_CONSTANT:
            graph.initializer.append(weight)
        elif weight.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(weight.name, weight.data_type, weight.dims))
    return onnx.shape_inference.infer_shapes(skeleton)


SHARED_WEIGHT = "deepvis-shared-weight"   # the location a weight held outside the model names


def weights_outside(model: onnx.ModelProto, names) -> onnx.ModelProto:
    """A copy of ``model`` whose initializers ``names`` hold no bytes: each is marked as external data
    (type and shape kept), which an ONNX Runtime session then takes from memory
    (SessionOptions.add_external_initializers). Its copies and sessions then cost no copy of the weights."""
    names = set(names)
    copy = onnx.ModelProto()
    for field, value in model.ListFields():
        if field.name != "graph":
            _copy_field(copy, field, value)
    for field, value in model.graph.ListFields():
        if field.name != "initializer":
            _copy_field(copy.graph, field, value)
    for weight in model.graph.initializer:
        if weight.name not in names:
            copy.graph.initializer.append(weight)
            continue
        marker = copy.graph.initializer.add(name=weight.name, data_type=weight.data_type, dims=weight.dims)
        marker.data_location = onnx.TensorProto.EXTERNAL
        marker.external_data.add(key="location", value=SHARED_WEIGHT)
    return copy


def held_outside(tensor: onnx.TensorProto) -> bool:
    """Whether ``tensor`` is one of weights_outside's markers."""
    return tensor.data_location == onnx.TensorProto.EXTERNAL and any(
        entry.key == "location" and entry.value == SHARED_WEIGHT for entry in tensor.external_data)


def _copy_field(target, field, value) -> None:
    if hasattr(value, "extend"):   # a repeated field
        getattr(target, field.name).extend(value)
    elif field.type == field.TYPE_MESSAGE:
        getattr(target, field.name).CopyFrom(value)
    else:
        setattr(target, field.name, value)


def with_all_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model whose outputs are every node output, so one run returns them all."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inferred = inferred_shapes(copy)
    types = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    present = {o.name for o in copy.graph.output}
    for node in copy.graph.node:
        for name in node.output:
            if not name or name in present:
                continue
            present.add(name)
            info = types.get(name)
            if info is not None and info.type.tensor_type.elem_type:
                elem_type = info.type.tensor_type.elem_type
            else:
                elem_type = onnx.TensorProto.FLOAT
            copy.graph.output.append(onnx.helper.make_tensor_value_info(name, elem_type, None))
    return copy


def ancestors(graph: onnx.GraphProto, names) -> set:
    """Every tensor the named tensors are computed from, themselves included."""
    producer = {output: node for node in graph.node for output in node.output if output}
    found, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name in found:
            continue
        found.add(name)
        stack.extend(producer[name].input if name in producer else [])
    return found


def readers(graph: onnx.GraphProto) -> dict:
    """tensor name -> the nodes that read it, in graph order."""
    found = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def in_place_activations(model: onnx.ModelProto, layers: list) -> dict:
    """{layer: the activation layer reading it} for each of ``layers`` that only elementwise
    activations read, each making a layer: the pairs Caffe's in-place ReLUs kept in one blob (Caffe
    ran activations in place, so a conv's blob already held its ReLU's output)."""
    readers_of, names = readers(model.graph), set(layers)
    return {name: readers_of[name][0].output[0] for name in layers if readers_of.get(name) and
            all(trait(node.op_type).activation and node.output[0] in names for node in readers_of[name])}


def declared_layers(model: onnx.ModelProto) -> set:
    """The tensor names the model's metadata lists as layers (none for most ONNX files)."""
    text = next((p.value for p in model.metadata_props if p.key == LAYERS_METADATA_KEY), "[]")
    try:
        names = json.loads(text)
    except ValueError:
        names = None
    if not isinstance(names, list):
        raise DeepVisError(f"model metadata {LAYERS_METADATA_KEY}: not a JSON list of tensor names")
    return set(map(str, names))


def find_layers(model: onnx.ModelProto, values: dict) -> list:
    """Layers in topological order; ``values`` maps tensor name -> a batch-1 array from a run.

    Only floating-point tensors with a batch axis count: integer tensors are shape arithmetic.
    """
    always = {o.name for o in model.graph.output} | declared_layers(model)  # whatever their op
    layers, seen = [], set()
    for node in model.graph.node:  # ONNX requires nodes in topological order
        for name in node.output:
            value = values.get(name)
            if name in seen or value is None or value.ndim == 0 or value.dtype.kind != "f":
                continue
            if trait(node.op_type).layer or name in always:
                seen.add(name)
                shape = tuple(int(d) for d in value.shape[1:])
                layers.append(Layer(name, shape, kind_of(shape), node.op_type))
    return layers


def needed_for(model, name: str):
    """A copy of the model with only the nodes that tensor ``name`` depends on, and those of its
    outputs they make. A model with subgraphs (If, Loop, Scan: their outer-scope inputs go unlisted) stays whole."""
    graph_types = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if any(attribute.type in graph_types for node in model.graph.node for attribute in node.attribute):
        return model
    needed = ancestors(model.graph, [name])
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    nodes = [node for node in copy.graph.node if needed.intersection(node.output)]
    read, made = {name for node in nodes for name in node.input}, {name for node in nodes for name in node.output}
    outputs = [output for output in copy.graph.output if output.name in made]
    weights = [weight for weight in copy.graph.initializer if weight.name in read]  # ORT refuses orphans
    del copy.graph.node[:], copy.graph.output[:], copy.graph.initializer[:]
    copy.graph.node.extend(nodes)
    copy.graph.output.extend(outputs)
    copy.graph.initializer.extend(weights)
    return copy
