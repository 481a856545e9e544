"""One table of converters, Caffe layer type -> function, and what each function is handed.

A converter reads its layer's parameters (with Caffe's defaults), adds ONNX nodes through its
`LayerContext` and returns one tensor name per top. The last node of a single-top layer is named
after the layer, so users find the names they know.
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from app.errors import DeepVisError
from app.net.caffe.graph import Graph
from app.net.caffe.reader import CaffeLayer

CONVERTERS = {}
MAX_MADE_BLOB_VALUES = 2 ** 28   # 1 GB of float32: far over any real layer (VGG16's fc6: 0.4 GB)


def converts(*layer_types: str):
    """Register the decorated function as the converter of these Caffe layer types."""
    def register(function):
        for layer_type in layer_types:
            if layer_type in CONVERTERS:
                raise ValueError(f"two converters for Caffe layer type {layer_type}")
            CONVERTERS[layer_type] = function
        return function
    return register


@dataclass
class LayerContext:
    """The graph, the layer being converted, its input tensor names and the file named in errors."""

    graph: Graph
    layer: CaffeLayer
    inputs: list
    where: str
    make_blob: Optional[Callable] = None  # (layer, index, shape) -> array: weights made, not read

    @property
    def x(self) -> str:
        return self.inputs[0]

    def shape(self, index: int = 0) -> tuple:
        return self.graph.shapes[self.inputs[index]]

    def fail(self, what: str) -> "NoReturn":  # noqa: F821
        raise DeepVisError(f"{self.where}: layer {self.layer.name} ({self.layer.type}): {what}")

    def param(self, field: str):
        """The layer's `field` parameter message (defaults when the prototxt leaves it out)."""
        return getattr(self.layer.param, field)

    def output(self, op: str, inputs: list, **attributes) -> str:
        """The layer's final node, its output named after the layer."""
        return self.graph.node(op, inputs, self.layer.name, **attributes)

    def temp(self, op: str, inputs: list, suffix: str, **attributes) -> str:
        """An intermediate node of the layer, named layer/suffix."""
        return self.graph.node(op, inputs, f"{self.layer.name}/{suffix}", **attributes)

    def const(self, suffix: str, array) -> str:
        return self.graph.const(f"{self.layer.name}/{suffix}", array)

    def has_blob(self, index: int) -> bool:
        return self.make_blob is not None or index < len(self.layer.blobs)

    def blob(self, index: int, shape: tuple) -> np.ndarray:
        """Weight blob `index`, checked against the shape the layer needs (or made in that shape)."""
        if self.make_blob is not None:
            shape = tuple(int(d) for d in shape)
            if min(shape, default=1) < 1 or math.prod(shape) > MAX_MADE_BLOB_VALUES:
                self.fail(f"weight blob {index} would have shape {shape}: empty, or over "
                          f"{MAX_MADE_BLOB_VALUES} values")
            self.graph.check_room(4 * math.prod(shape))   # before the blob is made
            return self.make_blob(self.layer, index, shape)
        if not self.has_blob(index):
            self.fail(f"weight blob {index} is missing (expected shape {tuple(shape)})")
        array, legacy = self.layer.blobs[index]
        shape = tuple(int(d) for d in shape)
        if array.shape == shape:
            return array
        # V1 blobs store any shape in 4-D num/channels/height/width: padded with leading ones
        if legacy and array.size == int(np.prod(shape)) and array.shape[:4 - len(shape)] == (1,) * (4 - len(shape)):
            return array.reshape(shape)
        self.fail(f"weight blob {index} has shape {array.shape}, expected {shape}")
