"""What the compute thread does for one request: forward, then backward when asked -> a Snapshot.

A Snapshot is immutable and self-contained: the panes draw from it alone and never touch the
network. Whether the back pane is stale is derived by comparing the snapshot's request with the
request the current state would make (``request_for``), never by flags.
"""
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from app.errors import DeepVisError
from app.inputs import Frame, fit_to_input
from app.ui.state import WEIGHT_PATTERNS, AppState


@dataclass(frozen=True)
class Backprop:
    """Where a backward pass starts and how it runs."""

    layer: str
    unit: int
    mode: str
    occlusion: Optional[tuple] = None   # (patch, stride, fill, batch) in occlusion mode


@dataclass(frozen=True)
class Request:
    frame: Frame                 # compared by identity: a new frame is a new request
    fit_mode: str
    siamese_view: str
    backprop: Optional[Backprop]
    want_diffs: bool             # the layers pane shows diffs: keep every layer's diff
    weights: Optional[Tuple[str, str]] = None   # (layer, pattern) of a weights pattern mode
    order: Optional[tuple] = None   # (layer, channel order, source, find_maxes folder) when not the original order
    weight_origin: Optional[Tuple[str, Optional[int]]] = None   # weight grads: (layer, unit; None = top one)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything the panes draw, from one forward (and backward) run (compared by identity)."""

    request: Request
    net_image: np.ndarray                    # the fitted H x W x 3 BGR image the net saw
    activations: Dict[str, np.ndarray]       # layer -> one sample's activation (no batch axis)
    predictions: Tuple[Tuple[str, float], ...]
    input_diff: Optional[np.ndarray] = None  # H x W x 3 float, image layout and BGR order
    diffs: Optional[Dict[str, np.ndarray]] = None
    backprop_message: str = ""               # why there is no backprop image (error, all zeros)
    seconds: Dict[str, float] = field(default_factory=dict)
    weights_view: object = None              # weights pattern: O x h x w x 3 tiles, one image, or a message
    order: object = None                     # the asked layer's ChannelOrder, or a message
    weight_grad_sets: tuple = ()             # weight grads: (title, tiles) per compared unit, one shared scale


def request_for(state: AppState, frame: Frame) -> Request:
    """The computation the state asks for on ``frame``."""
    backprop = None
    if state.backprop_mode != "off":
        layer, unit = state.backprop_origin
        occlusion = tuple(state.occlusion) if state.backprop_mode == "occlusion" else None
        backprop = Backprop(state.layers[layer].name, unit, state.backprop_mode, occlusion)
    weights = (state.layers[state.layer].name, state.pattern) if state.pattern in WEIGHT_PATTERNS else None
    want_diffs = state.show_diffs and backprop is not None and backprop.occlusion is None
    order = order_request(state)
    origin = None
    if state.pattern == "weight grads":
        frozen = state.frozen_origin
        origin = (state.layers[frozen[0]].name, frozen[1]) if frozen else (state.layers[-1].name, None)
    return Request(frame, state.fit_mode, state.siamese_view, backprop, want_diffs, weights, order, origin)


def order_request(state: AppState) -> Optional[tuple]:
    """What the layers pane's tile order is computed from (None: unit order): (layer, channel
    order, "input" or "dataset", find_maxes folder of the dataset statistics)."""
    if state.channel_order == "original":
        return None
    return (state.layers[state.layer].name, state.channel_order, state.order_source, state.dataset_stats)


def net_image(net, request: Request) -> np.ndarray:
    """The frame's image fitted to the net's input size (second image of a pair when asked)."""
    images = request.frame.images
    image = images[1] if request.siamese_view == "second" and len(images) > 1 else images[0]
    width, height = net.spec.input.image_size()
    return fit_to_input(image, (height, width), request.fit_mode)


class Computer:
    """``compute`` for the compute thread: the forward pass is skipped when only the backprop
    origin or mode changed since the last request (same frame, fit and siamese view)."""

    def __init__(self, net):
        self.net = net
        self._forward_key, self._forward = None, None

    def __call__(self, request: Request) -> Snapshot:
        key = (request.frame, request.fit_mode, request.siamese_view)   # frames compare by identity
        reuse = self._forward if key == self._forward_key else None
        snapshot = compute(self.net, request, reuse)
        self._forward_key, self._forward = key, (snapshot.net_image, snapshot.activations, snapshot.predictions)
        return snapshot


def compute(net, request: Request, forward=None) -> Snapshot:
    """Run ``net`` for ``request``: every layer forward, then the backward pass if one is asked.

    forward: (net_image, activations, predictions) of the last run of ``net`` when it was on the
    same input, so that only the backward pass runs."""
    seconds = {}
    start = time.perf_counter()
    if forward is None:
        image = net_image(net, request)
        outputs = net.forward([image])
        forward = (image, {name: value[0] for name, value in outputs.items()}, top_predictions(net))
        seconds["forward"] = time.perf_counter() - start
    image, activations, predictions = forward
    grad_sets = ()
    if request.weight_origin is not None:
        grad_sets = weight_gradient_sets(net, image, activations, request.weights[0], request.weight_origin)
        weights = grad_sets if isinstance(grad_sets, str) else grad_sets[0][1]
        grad_sets = () if isinstance(grad_sets, str) else grad_sets
    else:
        weights = weights_view(net, *request.weights) if request.weights else None
    order = channel_order(activations, *request.order) if request.order else None
    if request.backprop is None:
        return Snapshot(request, image, activations, predictions, seconds=seconds, weights_view=weights,
                        order=order, weight_grad_sets=grad_sets)
    start = time.perf_counter()
    input_diff, diffs, message = _backward(net, request, image)
    seconds["backward"] = time.perf_counter() - start
    return Snapshot(request, image, activations, predictions, input_diff=input_diff, diffs=diffs,
                    backprop_message=message, seconds=seconds, weights_view=weights, order=order,
                    weight_grad_sets=grad_sets)


def weights_view(net, layer: str, pattern: str):
    """A weights pattern of ``layer``: every unit's filter or weight histogram (O x h x w x 3
    tiles, tile k = unit k) or the units' weight correlation (one image); a one-line message when
    the layer has no weights."""
    from app.views import filters, weights

    try:
        unit_weights = weights.unit_weights(net, layer)
    except DeepVisError as error:
        return str(error)
    if pattern == "filters":
        if unit_weights.ndim != 4:
            return f"{net.spec.name}: {layer}: no filters to draw (weights of shape {unit_weights.shape}): try g"
        spec = net.spec.input
        return filters.unit_filter_tiles(unit_weights, spec.channel_swap, spec.transpose)
    if pattern == "weights histogram":
        return filters.histogram_tiles(unit_weights)
    return filters.correlation_image(filters.weight_correlation(unit_weights), size=600)


def weight_gradient_sets(net, image, activations, layer: str, origin):
    """Gradients of origin units with respect to ``layer``'s filters, as (title, tiles) pairs on
    one shared scale (mid-gray = 0), one tile per filter; or a message. A frozen origin gives its
    unit alone; else the origin layer's strongest, second and weakest units on this image are
    compared (for a class layer: the class, a similar one and a dissimilar one)."""
    from app.views import weight_grad

    origin_layer, unit = origin
    if unit is None:
        value = activations[origin_layer]
        ranked = np.argsort(-value.reshape(len(value), -1).max(axis=1), kind="stable")
        units = [int(u) for u in dict.fromkeys((ranked[0], ranked[min(1, len(ranked) - 1)], ranked[-1]))]
    else:
        units = [unit]
    try:
        gradients = weight_grad.weight_gradients(net, [image] * len(units), origin_layer, units, layer)
    except DeepVisError as error:
        return str(error)
    spec = net.spec.input
    sets = weight_grad.gradient_tile_sets(gradients, spec.channel_swap, transpose=spec.transpose)
    labels = net.labels or []
    count = len(activations[origin_layer])
    titles = [labels[u] if len(labels) == count else f"unit {u}" for u in units]
    return tuple(zip(titles, sets))


def channel_order(activations: Dict[str, np.ndarray], layer: str, mode: str, source: str = "input",
                  stats_folder=None):
    """The ChannelOrder of ``layer``'s units by ``mode`` on this input's activation (or over the
    dataset find_maxes scored into ``stats_folder``), or a message."""
    from app.views import dataset_order, ordering

    try:
        if source == "dataset":
            return dataset_order.dataset_order(stats_folder, layer, mode, len(activations[layer]))
        return ordering.channel_order(mode, ordering.activation_features(activations[layer]))
    except DeepVisError as error:
        return str(error)


def _backward(net, request: Request, image: np.ndarray):
    origin = request.backprop
    if origin.occlusion is not None:
        return _occlusion(net, origin, image)
    try:
        result = net.backward(origin.layer, origin.unit, mode=origin.mode, seed="activation",
                              return_diffs=request.want_diffs)
    except DeepVisError as error:
        return None, None, f"no backprop: {error}"
    input_diff, diffs = result if request.want_diffs else (result, None)
    if diffs is not None:
        diffs = {name: value[0] for name, value in diffs.items()}
    image_diff = to_image_layout(net, input_diff[0])
    message = ""
    if not np.any(image_diff):
        message = (f"backprop from {origin.layer}:{origin.unit} gives all zeros at the input "
                   "(the unit is not active on this image, or nothing flows back)")
    return image_diff, diffs, message


def _occlusion(net, origin: Backprop, image: np.ndarray):
    """The occlusion map of the origin unit as an input diff (the same map in every channel)."""
    from app.views.occlusion import occlusion_map

    patch, stride, fill, batch = origin.occlusion
    try:
        heat = occlusion_map(net, net.preprocess([image]), origin.layer, origin.unit, patch=patch,
                             stride=stride, fill=fill, batch_size=batch)
    except DeepVisError as error:
        return None, None, f"no occlusion map: {error}"
    message = ""
    if not np.any(heat):
        message = (f"occluding the input does not change {origin.layer}:{origin.unit} "
                   "(the unit is not active on this image, or the patch is too small)")
    return to_image_layout(net, np.repeat(heat[None], net.input_shape[0], axis=0)), None, message


def to_image_layout(net, diff: np.ndarray) -> np.ndarray:
    """A C x H x W input diff as H x W x 3 in the image's BGR order (undoing swap and transpose)."""
    spec = net.spec.input
    if spec.transpose:
        diff = diff.transpose(0, 2, 1)
    if diff.shape[0] != 3 or len(spec.channel_swap) != 3:
        return np.repeat(diff.mean(axis=0)[:, :, None], 3, axis=2)
    image = np.empty(diff.shape[1:] + (3,), np.float32)
    for net_channel, bgr_channel in enumerate(spec.channel_swap):
        image[:, :, bgr_channel] = diff[net_channel]
    return image


def top_predictions(net, top: int = 5) -> Tuple[Tuple[str, float], ...]:
    """The best classes of the last forward run (softmax applied when the outputs are logits)."""
    scores = np.asarray(net.tensors[net.prob_layer()], np.float64).reshape(-1)
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        return ()
    if np.any(scores < 0) or not np.isclose(scores.sum(), 1.0, atol=1e-3):
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
    names = net.labels or []
    best = np.argsort(-scores, kind="stable")[:top]
    return tuple((names[i] if i < len(names) else f"class {i}", float(scores[i])) for i in best)
