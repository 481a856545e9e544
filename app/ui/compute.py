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
from app.net.run import MissingTensor
from app.ui.state import AppState
from app.views import registry
from app.views.registry import InputMap


@dataclass(frozen=True)
class Backprop:
    """Where the back pane's method starts and which method (app/views/registry.py) it is."""

    layer: str
    unit: int
    mode: str


@dataclass(frozen=True)
class Pattern:
    """A layers-pane pattern mode computed from the net: its name, the selected layer, and the other
    request inputs its function reads (app/views/registry.py: REQUEST_INPUTS) as (name, value)."""

    name: str
    layer: str
    inputs: Tuple[Tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Request:
    frame: Frame                 # compared by identity: a new frame is a new request
    fit_mode: str
    siamese_view: str
    backprop: Optional[Backprop]
    want_diffs: bool             # the layers pane's entry reads diffs: keep every layer's diff
    pattern: Optional[Pattern] = None   # a pattern mode computed from the net (None: off, or images on disk)
    order: Optional[tuple] = None   # (layer, channel order, source, find_maxes folder) when not the original order
    layer: Optional[str] = None     # the selected layer, what the panes show (None: compute every layer)


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
    backward_fallback: str = ""              # why the backward walked in NumPy instead of the graph
    seconds: Dict[str, float] = field(default_factory=dict)
    pattern: object = None                   # the request's pattern mode: Tiles, Picture or Message
    order: object = None                     # the asked layer's ChannelOrder, or a message
    second: Optional["Snapshot"] = None      # siamese "both": the pair's second image, run in the same batch


def request_for(state: AppState, frame: Frame) -> Request:
    """The computation the state asks for on ``frame``."""
    backprop, want_diffs = None, False
    if state.backprop_mode != "off":
        layer, unit = state.backprop_origin
        backprop = Backprop(state.layers[layer].name, unit, state.backprop_mode)
        want_diffs = ("shown_diffs" in registry.base(state.show_diffs).inputs
                      and "layer_diffs" in registry.entry("back", state.backprop_mode).inputs)
    return Request(frame, state.fit_mode, state.siamese_view, backprop, want_diffs, pattern_request(state),
                   order_request(state), state.layer_info.name)


def pattern_request(state: AppState) -> Optional[Pattern]:
    """The pattern mode the state shows, when the compute thread makes it (None: off, drawn from the
    per-unit images on disk, or computed by the layers pane from the snapshot)."""
    entry = registry.shown(state.pattern, state.show_diffs)
    if entry.compute is None or entry.from_snapshot:
        return None
    frozen = state.frozen_origin
    values = {"frozen": (state.layers[frozen[0]].name, frozen[1]) if frozen is not None else None,
              "stats_folder": state.dataset_stats}
    inputs = tuple((name, values[name]) for name in entry.request_inputs if name in values)
    return Pattern(state.pattern, state.layer_info.name, inputs)


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


def needed(net, request: Request, backward_reads=None) -> Optional[frozenset]:
    """The tensors the forward of ``request`` must give: the selected layer, the class output, the
    channel order's layer and, with backprop on, the origin and ``backward_reads`` (what the last
    backward pass from that origin read); None (every tensor) while what the panes or the backward
    read is not known: a pattern mode computed from the net, the layer diffs, the first backward
    pass from a layer, or a request that names no layer."""
    if request.layer is None or request.pattern is not None or request.want_diffs:
        return None
    names = {request.layer}
    if net.prob_layer() is not None:
        names.add(net.prob_layer())
    if request.order is not None:
        names.add(request.order[0])
    if request.backprop is not None:
        if backward_reads is None:
            return None
        names |= {request.backprop.layer} | backward_reads
    return frozenset(names)


class Computer:
    """``compute`` for the compute thread: the forward pass is skipped when only the backprop
    origin or mode changed since the last request (same frame, fit and siamese view) and the last
    run holds what the new request needs; it keeps the last run for that. The forward computes only
    what the request needs (``needed``): for the backward, what the last pass from the same layer
    and mode read; every tensor while the session of that set is being made (Net.prepare_forward)."""

    def __init__(self, net, settings=None):
        self.net, self.settings = net, settings
        self._key, self._run = None, None
        self._reads = {}   # (layer, mode) -> the run's tensors its last backward pass read

    def __call__(self, request: Request) -> Snapshot:
        key = (request.frame, request.fit_mode, request.siamese_view)   # frames compare by identity
        origin = (request.backprop.layer, request.backprop.mode) if request.backprop else None
        outputs = needed(self.net, request, self._reads.get(origin))
        if outputs is not None and not self.net.prepare_forward(outputs):
            outputs = None   # its session is being made: every tensor this time, no pause
        if key != self._key or not _holds(self._run, outputs):
            # the last run's arrays go first: ONNX Runtime then reuses their memory for the next
            self._key, self._run = None, None
        try:
            snapshot, self._run, read = _compute(self.net, request, self._run, self.settings, outputs)
        except MissingTensor:   # the backward read more than last time (its graph was made again)
            self._reads.pop(origin, None)
            snapshot, self._run, read = _compute(self.net, request, None, self.settings, None)
        if origin is not None:
            self._reads[origin] = frozenset(read)
        self._key = key
        return snapshot


def _holds(run, outputs: Optional[frozenset]) -> bool:
    """Whether ``run`` computed every tensor of ``outputs`` (None: every tensor of the graph)."""
    if run is None:
        return False
    if outputs is None:
        return not run.partial
    return all(run.tensors.computed(name) for name in outputs)


def compute(net, request: Request, run=None, settings=None) -> Snapshot:
    """Run ``net`` for ``request``: the forward of what it needs (``needed``: every layer while
    backprop is on, since no earlier pass says what the backward reads), the pattern mode's
    computation and the back pane's method (app/views/registry.py) when asked.

    run: the forward run of the request's images when the caller holds one, so that only the rest
    runs. settings: what the methods read their tunables from (None: settings.py). A siamese pair
    shown "both" runs as a batch of two; the snapshot holds the first image and its ``second`` the
    other."""
    return _compute(net, request, run, settings, needed(net, request))[0]


def _compute(net, request: Request, run, settings, outputs: Optional[frozenset] = None) -> tuple:
    """(snapshot, the forward run it was made from, the run's tensors the backward read). outputs:
    the tensors a new forward computes (None: every one)."""
    seconds = {}
    images = net_images(net, request)
    if run is None:
        start = time.perf_counter()
        run = net.forward(images, outputs=outputs)
        seconds["forward"] = time.perf_counter() - start
    (image, activations, predictions), *pair = [
        (image, {name: value[i] for name, value in run.items()}, run.top_classes(sample=i))
        for i, image in enumerate(images)]
    pattern = None
    if request.pattern is not None:
        asked = request.pattern
        pattern = _call(registry.entry("layers", asked.name), dict(asked.inputs, layer=asked.layer), net=net,
                        image=image, activations=activations, settings=settings)
    order = channel_order([activations] + [p[1] for p in pair], *request.order) if request.order else None
    if request.backprop is None:
        return Snapshot(request, image, activations, predictions, seconds=seconds, pattern=pattern, order=order,
                        second=Snapshot(request, *pair[0]) if pair else None), run, set()
    start = time.perf_counter()
    origin = request.backprop
    with run.tensors.reading() as read:
        maps = _call(registry.entry("back", origin.mode), {}, net=net, run=run, images=images,
                     origin=(origin.layer, origin.unit), layer_diffs=request.want_diffs, settings=settings)
    (input_diff, diffs, message, fallback), *pair_maps = [_back_fields(shown) for shown in maps]
    seconds["backward"] = time.perf_counter() - start
    second = Snapshot(request, *pair[0], *pair_maps[0]) if pair else None
    return Snapshot(request, image, activations, predictions, input_diff=input_diff, diffs=diffs,
                    backprop_message=message, backward_fallback=fallback, seconds=seconds, pattern=pattern,
                    order=order, second=second), run, read


def _call(entry: registry.Entry, asked: dict, **available):
    """``entry``'s computation on the inputs it names, from the request's ``asked`` and the run's."""
    if "settings" in entry.inputs and available.get("settings") is None:
        from app.settings import load_settings

        available["settings"] = load_settings()
    available.update(asked)
    return entry.compute(**{name: available[name] for name in entry.inputs})


def _back_fields(shown) -> tuple:
    """(input diff, layer diffs, message, graph fallback) of the snapshot from a back-pane method's
    InputMap or Message."""
    if isinstance(shown, InputMap):
        return shown.values, shown.layers, shown.note, shown.fallback
    return None, None, shown.text, ""


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
