"""What the atlas says of the model itself: name, input, preprocessing, each layer's shape, kind,
operation and receptive field, and the filters of units that read the image directly."""
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from app.errors import DeepVisError
from app.net.receptive_field import receptive_fields
from app.views import filters
from app.views.weights import layer_weights, unit_weights

FILTER_PIXELS = 64   # a first-layer filter (3 x 3 to 11 x 11 weights) drawn this many pixels a side


@dataclass(frozen=True)
class LayerFacts:
    name: str
    index: int               # position among the model's layers (stable for a model: names the data file)
    shape: tuple
    kind: str                # "map", "vector" or "other"
    op_type: str
    field: Optional[tuple]   # receptive field (rows, columns) in input pixels; None: the whole input
    stride: Optional[tuple]


@dataclass(frozen=True)
class ModelFacts:
    name: str
    description: str
    input_size: tuple        # (height, width)
    preprocessing: tuple     # (what, value) lines
    layers: tuple            # LayerFacts in the model's order

    def layer(self, name: str) -> LayerFacts:
        return next(layer for layer in self.layers if layer.name == name)


def model_facts(net) -> ModelFacts:
    fields = receptive_fields(net)
    layers = tuple(LayerFacts(layer.name, index, tuple(int(v) for v in layer.shape), layer.kind, layer.op_type,
                              None if fields[layer.name].whole else tuple(fields[layer.name].size),
                              None if fields[layer.name].whole else tuple(fields[layer.name].stride))
                   for index, layer in enumerate(net.layers))
    spec = net.spec.input
    order = "".join("BGR"[c] for c in spec.channel_swap) if spec.channels == 3 else "gray"
    preprocessing = (("channels", order), ("pixel scale", _plain(spec.raw_scale)), ("mean", _plain(spec.mean)),
                     ("input scale", _plain(spec.input_scale)),
                     ("layout", "W x H (transposed)" if spec.transpose else "H x W"))
    return ModelFacts(net.spec.name, net.spec.description or "", tuple(net.input_shape[1:]), preprocessing, layers)


def _plain(value) -> str:
    """A setting as short text (a per-pixel mean array by its shape)."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim > 1:
        return f"per-pixel array {' x '.join(map(str, array.shape))}"
    return ", ".join(f"{v:.6g}" for v in np.atleast_1d(array))


def first_layer_filters(net, layer: str) -> Optional[list]:
    """PNG bytes of each unit's filter when ``layer``'s weights read the image itself (1 or 3
    channels, as app.views.filters draws them), else None."""
    try:
        reads_image = layer_weights(net, layer).node.input[0] == net.input_name
        weights = unit_weights(net, layer)
    except DeepVisError:
        return None
    if not reads_image or not filters.draws_in_colour(weights) or weights.shape[0] != net.layer(layer).channels:
        return None
    tiles = filters.filter_images(weights, net.spec.input.channel_swap, transpose=net.spec.input.transpose)
    return [cv2.imencode(".png", cv2.resize(tile, (FILTER_PIXELS, FILTER_PIXELS),
                                            interpolation=cv2.INTER_NEAREST))[1].tobytes() for tile in tiles]
