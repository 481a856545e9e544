"""Caffe net (prototxt + caffemodel) to an ONNX model, layer by layer through the converter table."""
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import onnx

from app.errors import DeepVisError
from app.files import write_bytes_atomic
from app.net.caffe import layers_activation, layers_conv, layers_norm, layers_pool, layers_shape  # noqa: F401  (register converters)
from app.net.caffe.graph import MAX_TENSOR_VALUES, Graph
from app.net.caffe.random_weights import RandomBlobs, write_caffemodel
from app.net.caffe.reader import DATA_TYPES, net_layers, read_caffemodel, read_prototxt
from app.net.caffe.registry import CONVERTERS, LayerContext
from app.net.onnx_graph import LAYERS_METADATA_KEY
from app.paths import cache_dir, feed_file


def _declared_input(net, layers: list, input_shape, where: str) -> tuple:
    """(input blob name, N x C x H x W shape) and the layers left once the input layer is taken out."""
    if net.input:
        if input_shape is None:
            if net.input_shape:
                input_shape = tuple(net.input_shape[0].dim)
            elif len(net.input_dim) >= 4:
                input_shape = tuple(net.input_dim[:4])
        return net.input[0], input_shape, layers
    first = layers[0] if layers else None
    if first is not None and first.type == "Input":
        if input_shape is None and first.param.input_param.shape:
            input_shape = tuple(first.param.input_param.shape[0].dim)
        return first.tops[0], input_shape, layers[1:]
    if first is not None and first.type in DATA_TYPES:
        if input_shape is None:
            crop = first.param.transform_param.crop_size
            if not crop:
                raise DeepVisError(f"{where}: layer {first.name} ({first.type}): give the input shape "
                                   "(N,C,H,W) of this data layer")
            input_shape = (1, 3, crop, crop)
        return first.tops[0], input_shape, layers[1:]
    raise DeepVisError(f"{where}: declares no input (input:, an Input layer or a data layer)")


def _cut(layers: list, cut_before) -> list:
    """Drop the named layers and every layer fed by them."""
    dropped_blobs, kept = set(), []
    for layer in layers:
        if layer.name in cut_before or dropped_blobs & set(layer.bottoms):
            dropped_blobs |= set(layer.tops)
        else:
            kept.append(layer)
    return kept


def _zero_blob(layer, index: int, shape: tuple) -> np.ndarray:
    return np.zeros(shape, np.float32)


def _convert_layer(converter, ctx: LayerContext) -> list:
    """The layer's output names, its nodes added and their shapes inferred; a layer whose
    parameters make no valid graph (shape inference refuses it) fails naming the layer."""
    first_node = len(ctx.graph.nodes)
    try:
        outputs = converter(ctx)
        ctx.graph.infer_shapes(first_node)
    except (ValueError, ZeroDivisionError, OverflowError, IndexError,
            onnx.shape_inference.InferenceError) as error:
        ctx.fail(str(error).strip().splitlines()[-1][:300])
    return outputs


def _check_input_shape(shape, input_name: str, where: str) -> None:
    if not shape or len(shape) != 4:
        raise DeepVisError(f"{where}: input {input_name} has shape {shape}; N x C x H x W is needed")
    if min(shape) < 1 or math.prod(shape[1:]) > MAX_TENSOR_VALUES:
        raise DeepVisError(f"{where}: input {input_name} has shape {tuple(shape)}: each dim must be at "
                           f"least 1 and an image at most {MAX_TENSOR_VALUES} values")


def convert(prototxt, caffemodel, input_shape=None, cut_before=(), make_blob=None) -> onnx.ModelProto:
    """An ONNX model (opset 13) computing the Caffe net; every layer's output named after it.

    input_shape: N,C,H,W overriding the prototxt's (needed for train_val nets whose data layer does
    not say). caffemodel None: the weights come from make_blob(layer, index, shape), zeros by
    default (the graph alone, for receptive fields and inspection; see random_weights).
    cut_before: names of layers (post-processing, e.g. PriorBox) to leave out with everything that
    depends on them.
    """
    where = str(prototxt)
    net = read_prototxt(Path(prototxt))
    if caffemodel is not None:
        weights, make_blob = read_caffemodel(Path(caffemodel)), None
    else:
        weights, make_blob = {}, make_blob or _zero_blob
    layers = _cut(net_layers(net, weights), set(cut_before))
    input_name, shape, layers = _declared_input(net, layers, input_shape, where)
    _check_input_shape(shape, input_name, where)
    graph = Graph()
    blobs = {input_name: graph.add_input(input_name, (1,) + tuple(int(d) for d in shape[1:]))}
    consumed, layer_outputs = set(), []
    for number, layer in enumerate(layers, 1):
        if not layer.name:
            raise DeepVisError(f"{where}: layer {number} (of type {layer.type or 'none'}) has no name")
        converter = CONVERTERS.get(layer.type)
        if converter is None:
            raise DeepVisError(f"{where}: layer {layer.name}: type {layer.type} cannot be converted"
                               " (post-processing layers can be left out with cut_before)")
        if not layer.tops or not all(layer.tops + layer.bottoms):
            raise DeepVisError(f"{where}: layer {layer.name}: it has no top blob, or a blob without a name")
        missing = [b for b in layer.bottoms if b not in blobs]
        if missing:
            raise DeepVisError(f"{where}: layer {layer.name}: bottom blob {missing[0]!r} is not produced "
                               "by any earlier layer")
        inputs = [blobs[b] for b in layer.bottoms]
        consumed.update(inputs)
        outputs = _convert_layer(converter, LayerContext(graph, layer, inputs, where, make_blob))
        blobs.update(zip(layer.tops, outputs))
        layer_outputs.extend(outputs)
    leaves = [name for name in dict.fromkeys(blobs.values()) if name not in consumed and name != input_name]
    model = graph.model(input_name, leaves)
    # Plumbing layers (Flatten, Split, Dropout...) are layers too: users look for every Caffe name
    onnx.helper.set_model_props(model, {LAYERS_METADATA_KEY: json.dumps(layer_outputs)})
    return model


def convert_random(prototxt, seed: int, caffemodel=None, **options) -> onnx.ModelProto:
    """The net converted with seeded random weights (random_weights.py); also written to `caffemodel` when given.

    options: as for `convert` (input_shape, cut_before).
    """
    blobs = RandomBlobs(seed, keep=caffemodel is not None)
    model = convert(prototxt, None, make_blob=blobs, **options)
    if caffemodel is not None:
        write_caffemodel(blobs.made, caffemodel)
    return model


_CACHE_FORMAT = "2"  # changed whenever converted files change, so older conversions are redone


def _content_hash(*paths, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        feed_file(digest, path)
    return digest.hexdigest()[:24]


def convert_cached(prototxt: Path, caffemodel: Path = None, random_seed: int = None, **options) -> Path:
    """The converted model's path in the cache (<cache>/caffe/<content hash>.onnx), converted once.

    caffemodel None: seeded random weights from ``random_seed`` (see random_weights), made in
    memory and kept in the cached ONNX file only.
    """
    if (caffemodel is None) == (random_seed is None):
        raise DeepVisError(f"{prototxt}: give either a caffemodel or a random weights seed")
    files = (prototxt,) if caffemodel is None else (prototxt, caffemodel)
    for path in files:
        if not Path(path).is_file():
            raise DeepVisError(f"{path}: file not found")
    extra = _CACHE_FORMAT + repr(sorted(options.items())) + (f"random seed {random_seed}" if caffemodel is None else "")
    key = _content_hash(*files, extra=extra)
    target = cache_dir() / "caffe" / f"{key}.onnx"
    if target.is_file():
        return target
    if caffemodel is None:
        model = convert_random(prototxt, random_seed, **options)
    else:
        model = convert(prototxt, caffemodel, **options)
    return write_bytes_atomic(target, model.SerializeToString())
