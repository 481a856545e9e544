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
from app.net.preprocess import image_layout
from app.ui.state import DATASET_PATTERNS, WEIGHT_PATTERNS, AppState


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
    pattern_view: Optional[tuple] = None   # (layer, pattern, find_maxes folder) of a weights or dataset pattern
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
    pattern_view: object = None              # weights or dataset pattern: tiles (one per unit), one image, or a message
    layer_stats: Optional[dict] = None       # dataset pattern: the layer's statistics (app.views.dataset_stats)
    order: object = None                     # the asked layer's ChannelOrder, or a message
    weight_grad_sets: tuple = ()             # weight grads: (title, tiles) per compared unit, one shared scale
    second: Optional["Snapshot"] = None      # siamese "both": the pair's second image, run in the same batch


def request_for(state: AppState, frame: Frame) -> Request:
    """The computation the state asks for on ``frame``."""
    backprop = None
    if state.backprop_mode != "off":
        layer, unit = state.backprop_origin
        occlusion = tuple(state.occlusion) if state.backprop_mode == "occlusion" else None
        backprop = Backprop(state.layers[layer].name, unit, state.backprop_mode, occlusion)
    pattern_view = None
    if state.pattern in WEIGHT_PATTERNS + DATASET_PATTERNS:
        folder = state.dataset_stats if state.pattern in DATASET_PATTERNS else None
        pattern_view = (state.layers[state.layer].name, state.pattern, folder)
    want_diffs = state.show_diffs and backprop is not None and backprop.occlusion is None
    order = order_request(state)
    origin = None
    if state.pattern == "weight grads":
        frozen = state.frozen_origin
        origin = (state.layers[frozen[0]].name, frozen[1]) if frozen else (state.layers[-1].name, None)
    return Request(frame, state.fit_mode, state.siamese_view, backprop, want_diffs, pattern_view, order, origin)


def order_request(state: AppState) -> Optional[tuple]:
    """What the layers pane's tile order is computed from (None: unit order): (layer, channel
    order, "input" or "dataset", find_maxes folder of the dataset statistics)."""
    if state.channel_order == "original":
        return None
    return (state.layers[state.layer].name, state.channel_order, state.order_source, state.dataset_stats)


def shown_images(images: tuple, siamese_view: str) -> tuple:
    """The images of a frame that ``siamese_view`` shows: the first, the second of a pair, or
    both of a pair ("both")."""
    if siamese_view == "both":
        return images[:2]
    return images[1:2] if siamese_view == "second" and len(images) > 1 else images[:1]


def net_images(net, request: Request) -> list:
    """The frame's shown images fitted to the net's input size (a pair shown "both" runs as a
    batch of two)."""
    width, height = net.spec.input.image_size()
    return [fit_to_input(image, (height, width), request.fit_mode)
            for image in shown_images(request.frame.images, request.siamese_view)]


class Computer:
    """``compute`` for the compute thread: the forward pass is skipped when only the backprop
    origin or mode changed since the last request (same frame, fit and siamese view); it keeps the
    last run for that."""

    def __init__(self, net):
        self.net = net
        self._key, self._run = None, None

    def __call__(self, request: Request) -> Snapshot:
        key = (request.frame, request.fit_mode, request.siamese_view)   # frames compare by identity
        if key != self._key:
            # the last run's arrays go first: ONNX Runtime then reuses their memory for the next
            self._key, self._run = None, None
        snapshot, self._run = _compute(self.net, request, self._run)
        self._key = key
        return snapshot


def compute(net, request: Request, run=None) -> Snapshot:
    """Run ``net`` for ``request``: every layer forward, then the backward pass if one is asked.

    run: the forward run of the request's images when the caller holds one, so that only the
    backward pass runs. A siamese pair shown "both" runs as a batch of two; the snapshot holds the
    first image and its ``second`` the other."""
    return _compute(net, request, run)[0]


def _compute(net, request: Request, run) -> tuple:
    """(snapshot, the forward run it was made from)."""
    seconds = {}
    images = net_images(net, request)
    if run is None:
        start = time.perf_counter()
        run = net.forward(images)
        seconds["forward"] = time.perf_counter() - start
    (image, activations, predictions), *pair = [
        (image, {name: value[i] for name, value in run.items()}, run.top_classes(sample=i))
        for i, image in enumerate(images)]
    grad_sets, stats = (), None
    if request.weight_origin is not None:
        grad_sets = weight_gradient_sets(net, image, activations, request.pattern_view[0], request.weight_origin)
        shown = grad_sets if isinstance(grad_sets, str) else grad_sets[0][1]
        grad_sets = () if isinstance(grad_sets, str) else grad_sets
    elif request.pattern_view is not None and request.pattern_view[1] in DATASET_PATTERNS:
        shown, stats = dataset_view(net, *request.pattern_view)
    else:
        shown = weights_view(net, *request.pattern_view[:2]) if request.pattern_view else None
    order = channel_order([activations] + [p[1] for p in pair], *request.order) if request.order else None
    if request.backprop is None:
        return Snapshot(request, image, activations, predictions, seconds=seconds, pattern_view=shown,
                        layer_stats=stats, order=order, weight_grad_sets=grad_sets,
                        second=Snapshot(request, *pair[0]) if pair else None), run
    start = time.perf_counter()
    (input_diff, diffs, message), *pair_backward = _backward(net, request, run, images)
    seconds["backward"] = time.perf_counter() - start
    second = Snapshot(request, *pair[0], *pair_backward[0]) if pair else None
    return Snapshot(request, image, activations, predictions, input_diff=input_diff, diffs=diffs,
                    backprop_message=message, seconds=seconds, pattern_view=shown, layer_stats=stats,
                    order=order, weight_grad_sets=grad_sets, second=second), run


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
        return filters.histogram_tiles(*filters.weight_histograms(unit_weights))
    return filters.correlation_image(filters.weight_correlation(unit_weights), size=600)


def dataset_view(net, layer: str, pattern: str, folder) -> tuple:
    """(picture or a one-line message, statistics or None) of a dataset pattern of ``layer``."""
    from app.views import dataset_stats

    shape = net.layer(layer).shape
    try:
        return dataset_stats.picture(folder, layer, pattern, shape[0] if shape else 1)
    except DeepVisError as error:
        return str(error), None


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


def channel_order(shown: list, layer: str, mode: str, source: str = "input", stats_folder=None):
    """The ChannelOrder of ``layer``'s units by ``mode`` on the activations of the images shown
    (one dict per image: a siamese pair orders by both), or over the dataset find_maxes scored
    into ``stats_folder``; or a message."""
    from app.views import dataset_order, ordering

    try:
        if source == "dataset":
            return dataset_order.dataset_order(stats_folder, layer, mode, len(shown[0][layer]))
        features = [ordering.activation_features(activations[layer]) for activations in shown]
        return ordering.channel_order(mode, np.concatenate(features, axis=1))
    except DeepVisError as error:
        return str(error)


def _backward(net, request: Request, run, images: list) -> list:
    """(input diff, layer diffs, message) per image, from the forward run of ``images``."""
    origin = request.backprop
    if origin.occlusion is not None:
        return [_occlusion(net, origin, image) for image in images]
    try:
        # the seed skips the layer's own rectifier, as in the original: a saturated ReLU6 unit still shows
        result = run.backward(origin.layer, origin.unit, mode=origin.mode, seed="activation",
                              layer_diffs=request.want_diffs, seed_through_rectifier=True)
    except DeepVisError as error:
        return [(None, None, f"no backprop: {error}")] * len(images)
    results = []
    for sample in range(len(images)):
        image_diff = to_image_layout(net, result.input[sample])
        message = ""
        if not np.any(image_diff):
            message = (f"backprop from {origin.layer}:{origin.unit} gives all zeros at the input "
                       "(the unit is off on this image, or the rectifiers on the way block it, e.g. ReLU6 units at 6)")
        sample_diffs = {name: value[sample] for name, value in result.layers.items()} if request.want_diffs else None
        results.append((image_diff, sample_diffs, message))
    return results


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
    return image_layout(diff, spec.channel_swap, spec.transpose).astype(np.float32, copy=False)
