"""What the user has chosen: plain immutable data, and pure transitions ``next_state(state, action)``.

Nothing here knows about windows, threads or the network; the app turns keys and clicks into
actions, and draws and computes from the state it gets back.
"""
from dataclasses import dataclass, replace
from typing import Optional, Tuple

from app.views import registry

BACKPROP_MODES = ("off",) + registry.names("back")   # the back pane's methods (app/views/registry.py)
BACKPROP_VIEWS = ("raw", "gray", "norm", "normblur", "sum>0", "histogram")
COLORMAPS = ("gray", "jet", "plasma", "viridis", "inferno", "magma", "turbo", "hot", "bone", "cool")
ZOOMS = ("normal", "unit", "backprop")
PATTERNS = ("off",) + registry.names("layers")   # the layers pane's pattern modes (app/views/registry.py)
WEIGHT_PATTERNS = registry.names("layers", weights=True)   # g / G cycles these alone
CHANNEL_ORDERS = ("original", "kmeans", "pca")   # layers pane tile order (app.views.ordering)
ORDER_SOURCES = ("input", "dataset")   # ordered by this input's activations or find_maxes's statistics
SIAMESE_VIEWS = ("first", "second", "both")
INPUT_OVERLAYS = ("off", "over active", "over inactive")
DEBUG_LEVELS = (0, 1, 2)
FIT_MODES = ("crop", "stretch")
FAST_STEP = 3
BACKPROP_FROM_CLASS = "grad"   # the backprop mode picking a class turns on when backprop is off
TOGGLED_METHOD = registry.toggled("back").name   # the back pane's method key x turns on and off


@dataclass(frozen=True)
class LayerInfo:
    """What the state needs to know of a layer: its name, its unit count and the size of one unit's map."""

    name: str
    units: int
    map_size: Tuple[int, int] = (1, 1)   # H x W of a unit's map (1 x 1 for a vector layer's units)


@dataclass(frozen=True)
class Tiling:
    """The selected layer's tiles as the layers pane shows them (app/ui/panes/layers.py: layout):
    tiles per row and the unit on each tile; the cursor keys move over them."""

    columns: int
    units: Tuple[int, ...]


@dataclass(frozen=True)
class AppState:
    layers: Tuple[LayerInfo, ...]
    layer: int = 0                       # index into layers
    unit: int = 0
    cursor_on_layers: bool = False       # cursor on the layer list (True) or on the units
    backprop_mode: str = "off"
    backprop_view: str = "raw"
    colormap: str = "gray"
    zoom: str = "normal"
    indiv_boosts: Tuple[float, ...] = (0.0, 0.3, 0.5, 0.8, 1.0)
    gamma_boosts: Tuple[float, ...] = (1.0, 0.7, 0.5, 0.3)
    indiv_boost: int = 0                 # index into indiv_boosts
    gamma_boost: int = 0                 # index into gamma_boosts
    show_diffs: bool = False             # layers pane: backward diffs instead of activations
    frozen_origin: Optional[Tuple[int, int]] = None   # (layer, unit) the backprop starts from
    show_labels: bool = True
    show_unit_jpgs: bool = True
    pattern: str = "off"
    channel_order: str = "original"
    order_source: str = "input"
    dataset_stats: Optional[str] = None  # find_maxes's output folder (maxes.json) for the dataset orders
    volume_view: bool = False            # aux pane: the layer's activation as a rotating 3-D projection
    first_image_only: bool = False
    siamese_view: str = "first"
    score_overlay: bool = False
    input_overlay: str = "off"
    help: bool = False
    debug: int = 0
    fit_mode: str = "crop"
    labels: Tuple[str, ...] = ()         # class names, for the go-to-class entry
    class_layers: Tuple[int, ...] = ()   # the logits layer, then the probability layer (when it differs)
    class_entry: Optional[str] = None    # what is typed in the go-to-class entry (None: closed)
    class_pick: int = 0                  # which match Enter picks (index into class_matches)
    quit: bool = False

    @property
    def layer_info(self) -> LayerInfo:
        return self.layers[self.layer]

    @property
    def backprop_origin(self) -> Tuple[int, int]:
        """(layer index, unit) the backward pass starts from: frozen with `d`, else the cursor's."""
        return self.frozen_origin if self.frozen_origin is not None else (self.layer, self.unit)

    @property
    def class_matches(self) -> Tuple[int, ...]:
        """The classes the go-to-class entry's text names, best first."""
        if not self.class_layers or not self.class_entry:
            return ()
        return class_matches(self.labels, self.layers[self.class_layers[0]].units, self.class_entry)

    @property
    def picked(self) -> int:
        """Which of class_matches Enter picks (-1: none)."""
        return min(self.class_pick, len(self.class_matches) - 1)


def class_matches(labels: Tuple[str, ...], units: int, text: str) -> Tuple[int, ...]:
    """Classes for a typed ``text``: the class of that index, then the labels equal to it, starting
    with it, with a word starting with it, containing it (case-insensitive; ties in class order)."""
    text = text.strip().lower()
    if not text:
        return ()
    index = (int(text),) if text.isdigit() and int(text) < units else ()
    ranked = []
    for number, label in enumerate(labels[:units]):
        label = label.lower()
        if text in label:
            words = " " + label.replace("-", " ").replace("_", " ")
            rank = 0 if label == text else 1 if label.startswith(text) else 2 if " " + text in words else 3
            ranked.append((rank, number))
    return index + tuple(number for _, number in sorted(ranked) if number not in index)


def cycle(choices: tuple, current, step: int = 1):
    """The choice ``step`` places after ``current`` (wrapping)."""
    return choices[(choices.index(current) + step) % len(choices)]


def _select_layer(state: AppState, layer: int) -> AppState:
    layer = max(0, min(len(state.layers) - 1, layer))
    return replace(state, layer=layer, unit=min(state.unit, state.layers[layer].units - 1))


def _move(state: AppState, dx: int, dy: int, tiling: Optional[Tiling]) -> AppState:
    """Move the cursor by tiles as the layers pane shows them (``tiling``), or along the layer list."""
    if state.cursor_on_layers:
        if dy > 0:
            return replace(state, cursor_on_layers=False)
        return _select_layer(state, state.layer + dx) if dx else state
    if tiling is None:
        raise ValueError("moving the cursor over the units needs the layers pane's tiling")
    position = tiling.units.index(state.unit)
    if dy < 0 and position < tiling.columns:
        return replace(state, cursor_on_layers=True)
    position = max(0, min(len(tiling.units) - 1, position + dx + dy * tiling.columns))
    return replace(state, unit=tiling.units[position])


def _zoom(state: AppState) -> AppState:
    zoom = cycle(ZOOMS, state.zoom)
    if zoom == "backprop" and state.backprop_mode == "off":
        zoom = cycle(ZOOMS, zoom)
    return replace(state, zoom=zoom)


def _freeze(state: AppState) -> AppState:
    frozen = None if state.frozen_origin is not None else (state.layer, state.unit)
    return replace(state, frozen_origin=frozen)


def _reset(state: AppState) -> AppState:
    return AppState(layers=state.layers, indiv_boosts=state.indiv_boosts, gamma_boosts=state.gamma_boosts,
                    fit_mode=state.fit_mode, dataset_stats=state.dataset_stats,
                    labels=state.labels, class_layers=state.class_layers)


def _class_layer(state: AppState) -> AppState:
    """`.`: to the logits (the unit kept: the same class), again to the probabilities and back."""
    if not state.class_layers:
        return state
    at = state.class_layers.index(state.layer) if state.layer in state.class_layers else -1
    target = state.class_layers[(at + 1) % len(state.class_layers)]
    return replace(_select_layer(state, target), cursor_on_layers=False)


def _pick_class(state: AppState) -> AppState:
    """Enter in the go-to-class entry: select the picked class on the logits layer and backprop from
    it (frozen there, so the other layers show its diffs); nothing to pick leaves the entry open."""
    matches = state.class_matches
    if not matches:
        return state
    layer, unit = state.class_layers[0], matches[state.picked]
    mode = BACKPROP_FROM_CLASS if state.backprop_mode == "off" else state.backprop_mode
    return replace(_select_layer(state, layer), unit=unit, cursor_on_layers=False, frozen_origin=(layer, unit),
                   backprop_mode=mode, class_entry=None, class_pick=0)


def _move_pick(step: int):
    def transition(state: AppState) -> AppState:
        count = len(state.class_matches)
        return replace(state, class_pick=max(0, min(count - 1, state.class_pick + step))) if count else state
    return transition


def _toggle_method(state: AppState) -> AppState:
    return replace(state, backprop_mode="off" if state.backprop_mode == TOGGLED_METHOD else TOGGLED_METHOD)


def _weights_view(step: int):
    """g / G: cycle the weights patterns and off, entering them from any other pattern."""
    choices = ("off",) + WEIGHT_PATTERNS
    def transition(state: AppState) -> AppState:
        current = state.pattern if state.pattern in choices else "off"
        return replace(state, pattern=cycle(choices, current, step))
    return transition


def _flip(name: str):
    return lambda state: replace(state, **{name: not getattr(state, name)})


def _step(name: str, choices: tuple, step: int = 1):
    return lambda state: replace(state, **{name: cycle(choices, getattr(state, name), step)})


def _step_index(name: str, choices_name: str):
    return lambda state: replace(state, **{name: (getattr(state, name) + 1) % len(getattr(state, choices_name))})


# The cursor keys: (dx, dy) in tiles of the layers pane (on the layer list: dx changes the layer).
MOVES = {
    "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
    "fast_left": (-FAST_STEP, 0), "fast_right": (FAST_STEP, 0), "fast_up": (0, -FAST_STEP), "fast_down": (0, FAST_STEP),
}
TRANSITIONS = {
    "help": _flip("help"),
    "quit": lambda state: replace(state, quit=True),
    "reset": _reset,
    "toggle_fit": _step("fit_mode", FIT_MODES),
    "cycle_debug": _step("debug", DEBUG_LEVELS),
    "previous_layer": lambda state: _select_layer(state, state.layer - 1),
    "next_layer": lambda state: _select_layer(state, state.layer + 1),
    "cycle_zoom": _zoom,
    "freeze_backprop": _freeze,
    "toggle_diffs": _flip("show_diffs"),
    "next_gamma_boost": _step_index("gamma_boost", "gamma_boosts"),
    "next_indiv_boost": _step_index("indiv_boost", "indiv_boosts"),
    "toggle_labels": _flip("show_labels"),
    "toggle_unit_jpgs": _flip("show_unit_jpgs"),
    "next_pattern": _step("pattern", PATTERNS),
    "previous_pattern": _step("pattern", PATTERNS, -1),
    "next_weights_view": _weights_view(1),
    "previous_weights_view": _weights_view(-1),
    "next_channel_order": _step("channel_order", CHANNEL_ORDERS),
    # a new source shows at once: from the original order it also switches to k-means
    "next_order_source": lambda state: replace(state, order_source=cycle(ORDER_SOURCES, state.order_source),
                                               channel_order="kmeans" if state.channel_order == "original"
                                               else state.channel_order),
    "toggle_volume_view": _flip("volume_view"),
    "toggle_first_image": _flip("first_image_only"),
    "next_backprop_mode": _step("backprop_mode", BACKPROP_MODES),
    "previous_backprop_mode": _step("backprop_mode", BACKPROP_MODES, -1),
    "toggle_occlusion": _toggle_method,
    "next_backprop_view": _step("backprop_view", BACKPROP_VIEWS),
    "previous_backprop_view": _step("backprop_view", BACKPROP_VIEWS, -1),
    "next_colormap": _step("colormap", COLORMAPS),
    "previous_colormap": _step("colormap", COLORMAPS, -1),
    "cycle_siamese_view": _step("siamese_view", SIAMESE_VIEWS),
    "toggle_score_overlay": _flip("score_overlay"),
    "next_input_overlay": _step("input_overlay", INPUT_OVERLAYS),
    "previous_input_overlay": _step("input_overlay", INPUT_OVERLAYS, -1),
    "class_layer": _class_layer,
    "go_to_class": lambda state: replace(state, class_entry="", class_pick=0),
    # the go-to-class entry's own keys (app/ui/keys.py: entry_action)
    "entry_accept": _pick_class,
    "entry_cancel": lambda state: replace(state, class_entry=None, class_pick=0),
    "entry_erase": lambda state: replace(state, class_entry=state.class_entry[:-1], class_pick=0)
    if state.class_entry else state,
    "entry_next": _move_pick(1),
    "entry_previous": _move_pick(-1),
}
# Actions carried out on the input source by the app; they leave the state as it is.
INPUT_ACTIONS = ("freeze_camera", "toggle_camera", "browser_camera", "next_image", "previous_image")
# Actions that write or open files (the app carries them out): from the newest snapshot, or (optimize_unit)
# the selected unit's optimized image, made in the background (app/ui/optimizer.py), or (open_atlas) the
# selected unit's atlas page.
EXPORT_ACTIONS = ("export_volume", "save_view", "optimize_unit", "open_atlas")


def next_state(state: AppState, action, tiling: Optional[Tiling] = None) -> AppState:
    """The state after ``action``: an action name, ("select_layer", i) / ("select_unit", u) from
    the mouse, or ("entry_type", character) typed into the go-to-class entry. The cursor keys
    (MOVES) step over ``tiling``, the tiles the layers pane shows. Input-source actions and
    unknown actions leave the state unchanged."""
    if action in MOVES:
        return _move(state, *MOVES[action], tiling)
    if isinstance(action, tuple):
        name, value = action
        if name == "select_layer":
            return replace(_select_layer(state, value), cursor_on_layers=True)
        if name == "select_unit":
            return replace(state, unit=max(0, min(state.layer_info.units - 1, value)), cursor_on_layers=False)
        if name == "entry_type" and state.class_entry is not None:
            return replace(state, class_entry=state.class_entry + value, class_pick=0)
        return state
    transition = TRANSITIONS.get(action)
    return transition(state) if transition else state
