"""Reading Caffe nets: prototxt (text) and caffemodel (binary), current and V1 formats, into one form.

Both formats become a list of `CaffeLayer`s with string types (V1 enums mapped to current names),
bottoms, tops, the parameter message and weight blobs matched by layer name (a caffemodel in one
format may pair with a prototxt in the other). Weights of layers the prototxt does not declare are
ignored. Training-only layers (data sources, losses, accuracy, TRAIN-phase rules) are dropped.
"""
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf import message as protobuf_message
from google.protobuf import text_format

from app.errors import DeepVisError
from app.net.caffe import schema

_V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONVOLUTION": "Convolution", "DATA": "Data", "DECONVOLUTION": "Deconvolution",
    "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "ELTWISE": "Eltwise", "EXP": "Exp",
    "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "IMAGE_DATA": "ImageData",
    "INNER_PRODUCT": "InnerProduct", "LRN": "LRN", "MEMORY_DATA": "MemoryData", "POOLING": "Pooling",
    "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold", "SILENCE": "Silence",
}
DATA_TYPES = {"Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData", "AnnotatedData"}
_TRAINING_TYPES = {"Accuracy", "Silence"}


@dataclass
class CaffeLayer:
    """One layer: name, current-format type, bottoms, tops, parameter message, weight blobs."""

    name: str
    type: str
    bottoms: list
    tops: list
    param: object  # LayerParameter or V1LayerParameter: both name their *_param fields alike
    blobs: list = field(default_factory=list)  # list of (array, shape_was_legacy_4d)


def read_prototxt(path: Path):
    """The NetParameter of a text prototxt; a malformed file names its line."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise DeepVisError(f"{path}: cannot read prototxt ({error})".splitlines()[0]) from None
    net = schema.NetParameter()
    try:
        text_format.Merge(_blank_foreign_params(text), net)
    except text_format.ParseError as error:
        line, column = error.GetLine(), error.GetColumn()
        where = f"line {line}, column {column}" if line else "parse error"
        what = str(error).splitlines()[0]
        what = what.split(" : ", 1)[1] if line and " : " in what else what  # drop protobuf's "L:C : "
        raise DeepVisError(f"{path}: {where}: {what}") from None
    return net


_LAYER_FIELDS = (set(schema.LayerParameter.DESCRIPTOR.fields_by_name)
                 | set(schema.V1LayerParameter.DESCRIPTOR.fields_by_name))
_PROTOTXT_TOKEN = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|[{}]|\w+')


def _blank_foreign_params(text: str) -> str:
    """The text with every `*_param { ... }` block that sits directly inside a layer and that our
    schema does not know (prior_box_param, python_param...) turned into spaces, newlines kept so
    parse errors still name the right line. Everything else is parsed strictly, so typos show."""
    chars, depth, blank_from, blank_depth, last_word = list(text), 0, None, None, None
    for match in _PROTOTXT_TOKEN.finditer(text):
        token = match.group()
        if token == "{":
            depth += 1
            if (blank_from is None and depth == 2 and last_word is not None
                    and last_word.group().endswith("_param") and last_word.group() not in _LAYER_FIELDS):
                blank_from, blank_depth = last_word.start(), depth
        elif token == "}":
            if blank_from is not None and depth == blank_depth:
                for i in range(blank_from, match.end()):
                    if chars[i] != "\n":
                        chars[i] = " "
                blank_from = None
            depth -= 1
        last_word = match if token[0].isalnum() or token[0] == "_" else None
    return "".join(chars)


def read_caffemodel(path: Path) -> dict:
    """Weight blobs of a binary caffemodel: layer name -> list of (array, legacy_4d)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DeepVisError(f"{path}: cannot read caffemodel ({error.strerror})") from None
    net = schema.NetParameter()
    try:
        net.ParseFromString(data)
    except protobuf_message.DecodeError:
        raise DeepVisError(f"{path}: not a complete caffemodel (truncated or not Caffe weights)") from None
    weights = {}
    for layer in list(net.layer) + list(net.layers):
        if layer.blobs:
            weights[layer.name] = [blob_array(blob, f"{path}: {layer.name}") for blob in layer.blobs]
    if not weights:
        raise DeepVisError(f"{path}: holds no weight blobs (not a caffemodel?)")
    return weights


def blob_array(blob, where: str) -> tuple:
    """(float32 array in the blob's shape, whether the shape came from the legacy 4-D fields)."""
    legacy = not blob.HasField("shape")
    shape = (tuple(blob.shape.dim) if not legacy
             else (blob.num, blob.channels, blob.height, blob.width))
    count = math.prod(shape)   # Python ints: absurd dims cannot overflow, nothing is allocated
    if blob.data:
        values = np.frombuffer(blob.data, "<f4")
    elif blob.double_data:
        values = np.frombuffer(blob.double_data, "<f8")
    else:  # the unpacked encoding, which the byte view cannot read
        unpacked = schema.FloatBlobProto.FromString(blob.SerializeToString())
        values = np.asarray(unpacked.data or unpacked.double_data, np.float64)
    if values.size != count:
        raise DeepVisError(f"{where}: weight blob holds {values.size} values, its shape {shape} needs {count}")
    return values.astype(np.float32).reshape(shape), legacy


def read_mean_binaryproto(path: Path) -> np.ndarray:
    """A Caffe mean file (.binaryproto BlobProto) as a float32 C x H x W array."""
    path = Path(path)
    blob = schema.BlobProto()
    try:
        blob.ParseFromString(path.read_bytes())
    except OSError as error:
        raise DeepVisError(f"{path}: cannot read mean file ({error.strerror})") from None
    except protobuf_message.DecodeError:
        raise DeepVisError(f"{path}: not a Caffe BlobProto mean file") from None
    array, _ = blob_array(blob, str(path))
    if array.ndim == 4:
        array = array[0]
    if array.ndim != 3:
        raise DeepVisError(f"{path}: mean blob has shape {array.shape}, expected C x H x W")
    return array


def _is_training_only(layer, type_name: str) -> bool:
    if type_name in _TRAINING_TYPES or type_name.endswith("Loss"):
        return True
    test = schema.NetParameter().state.phase  # TEST
    if any(rule.HasField("phase") and rule.phase != test for rule in layer.include):
        return True
    return any(rule.HasField("phase") and rule.phase == test for rule in layer.exclude)


def net_layers(net, weights: dict) -> list:
    """The prototxt's layers (either format), testing phase only, with their weights attached."""
    layers = []
    v1_names = schema.V1LayerParameter.LayerType
    for layer in net.layer:
        layers.append((layer, layer.type))
    for layer in net.layers:
        enum_name = v1_names.Name(layer.type)
        layers.append((layer, _V1_TYPES.get(enum_name, enum_name)))
    return [CaffeLayer(layer.name, type_name, list(layer.bottom), list(layer.top), layer,
                       weights.get(layer.name, []))
            for layer, type_name in layers if not _is_training_only(layer, type_name)]
