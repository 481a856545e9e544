"""One table of what the app can show: the layers pane's activations and diffs, every pattern mode
of the layers pane and every saliency method of the back pane is one Entry, declared with ``@shows``
beside the function that computes it.

The app cycles through the table's names (keys s / g / b; key a picks the layers pane's diffs entry
over its activations entry), its compute thread calls an entry's function with the inputs the
function names as parameters (the layers pane itself calls those that read the newest snapshot), and
the panes draw the typed result.
Adding a mode is one module in app/views (or a function in one) plus its test: this module finds
every module of the package itself.

What a compute function may ask for, by parameter name:
    net           the Net
    layer         the selected layer's name (the layers pane's modes)
    image         the first image shown, H x W x 3 uint8 BGR, fitted to the net's input
    activations   that image's activations (layer -> one sample's array)
    frozen        the backprop origin frozen with d, as (layer name, unit), or None
    stats_folder  find_maxes's output folder (settings.dataset_stats_dir)
    images        every image shown (one, or a siamese pair), fitted (the back pane's methods)
    run           the forward run of those images (app/net/run.py): its backward passes
    origin        (layer name, unit) the back pane's method starts from
    layer_diffs   whether the layers pane shows diffs: return them with the input map
    settings      the app's settings (a method's own tunables, documented in settings.py)
and, for an entry the layers pane computes from the newest snapshot as it draws (SNAPSHOT_INPUTS;
besides these it may read only ``layer``):
    shown_activations  per image shown (one, or a siamese pair "both"): its activations (layer -> array)
    shown_diffs        per image shown: its layer diffs (layer -> diff, or None for a failed pass);
                       None while the snapshot holds no diffs
    back_method        the back pane's method (a name of its entries), None while backprop is off
    back_current       whether the snapshot's backward pass is of the frame and origin asked for now
Layers-pane entries return UnitMaps, Tiles, Picture or Message (None: not computed yet); back-pane
methods return one InputMap or Message per image of ``images``. An entry without a function (compute
None) is drawn from what the panes load themselves: the per-unit images on disk.
"""
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

PANES = ("layers", "back")
SNAPSHOT_INPUTS = ("shown_activations", "shown_diffs", "back_method", "back_current")
INPUTS = ("net", "layer", "image", "activations", "frozen", "stats_folder", "images", "run", "origin",
          "layer_diffs", "settings") + SNAPSHOT_INPUTS
# inputs that belong in a request: a computation is made again when they change
REQUEST_INPUTS = ("layer", "frozen", "stats_folder", "origin", "layer_diffs")


@dataclass(frozen=True, eq=False)
class UnitMaps:
    """Every unit's map of the selected layer, per image shown (one, or a siamese pair side by side):
    the layers pane colours them with its boosts and colormap (signed: red / green on one robust
    scale) and tiles them at their own size, in the channel order asked for."""

    maps: Tuple[np.ndarray, ...]         # per image shown: C x H x W float32 (a vector layer: C x 1 x 1)
    signed: bool = False                 # diffs: red negative, green positive, zero black
    note: str = ""                       # why every map is all zero, or what NaN / Inf were there (said over the tiles)


@dataclass(frozen=True, eq=False)
class Tiles:
    """One picture per unit (picture k = unit k), tiled like the layer's units."""

    pictures: np.ndarray                 # units x h x w x 3 uint8
    sharp: bool = False                  # enlarged by nearest neighbour: a filter's weights are its pixels
    detail: object = None                # what the jpgvis pane shows beside them (Comparison, Histograms)


@dataclass(frozen=True, eq=False)
class Picture:
    """One picture for the whole pane (a correlation matrix)."""

    image: np.ndarray                    # H x W x 3 uint8


@dataclass(frozen=True)
class Message:
    """Why there is nothing to show: one line a user can act on (a hint may follow on more lines)."""

    text: str


@dataclass(frozen=True, eq=False)
class InputMap:
    """Where the input mattered to a unit, for one image: what the back pane draws in its view."""

    values: np.ndarray                   # H x W x 3 float32, the image's layout and BGR order
    layers: Optional[Dict[str, np.ndarray]] = None   # layer -> this image's diff, when asked (layer_diffs)
    note: str = ""                       # why the map is all zero (the back pane says so instead of gray)
    fallback: str = ""                   # why the NumPy walk ran instead of the graph (Backward.fallback)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Tile sets on one scale, one titled row each (the units a weight gradient is compared for)."""

    rows: Tuple[Tuple[str, np.ndarray], ...]


@dataclass(frozen=True, eq=False)
class Histograms:
    """A layer's statistics over a dataset (app/views/dataset_stats.py): the jpgvis pane draws the
    selected unit's histogram from them."""

    stats: dict


@dataclass(frozen=True)
class Entry:
    name: str                            # what the status line and the key cycles call it
    pane: str                            # "layers" (pattern modes, s / S) or "back" (b / B)
    compute: Optional[Callable]          # None: drawn from the per-unit images on disk
    inputs: Tuple[str, ...]              # the inputs compute takes (its parameter names)
    place: float                         # position in the pane's cycle
    title: str = ""                      # a longer name (the jpgvis pane's row titles, help)
    weights: bool = False                # one of the weights views (g / G cycles them alone)
    about: Optional[Callable] = None     # settings -> its tunables in a few words, for the status line
    diffs: Optional[bool] = None         # what the layers pane shows with no pattern mode, as key a picks
                                         # (False: the activations, True: the diffs); None: in the s cycle
    tag: str = ""                        # the status line's word for it (default "pattern (<name>)")
    origin: str = ""                     # starts from the unit frozen with d, else from the top layer's
                                         # units these words name (the status line says which)
    toggle: bool = False                 # back pane: key x turns this method on and off

    @property
    def request_inputs(self) -> Tuple[str, ...]:
        return tuple(name for name in self.inputs if name in REQUEST_INPUTS)

    @property
    def from_snapshot(self) -> bool:
        """Computed by the layers pane from the newest snapshot as it draws (not by the compute thread)."""
        return any(name in SNAPSHOT_INPUTS for name in self.inputs)


# trait -> its value when unset: a pane has at most one entry with each other value (the layers
# pane's activations and diffs, the back pane's method of key x)
UNIQUE_TRAITS = {"diffs": None, "toggle": False}
_ENTRIES: Dict[Tuple[str, str], Entry] = {}   # (pane, name) -> entry
_loaded = False


def shows(name: str, pane: str, place: float, title: str = "", weights: bool = False, about: Callable = None,
          **traits):
    """Register the decorated function as the computation of mode ``name`` of ``pane``; ``traits``:
    the other fields of Entry (diffs, tag, origin, toggle)."""
    def register(function: Callable) -> Callable:
        inputs = tuple(inspect.signature(function).parameters)
        unknown = [parameter for parameter in inputs if parameter not in INPUTS]
        if unknown:
            raise TypeError(f"{function.__qualname__}: unknown inputs {unknown}; inputs are {', '.join(INPUTS)}")
        mixed = [parameter for parameter in inputs if parameter not in SNAPSHOT_INPUTS + ("layer",)]
        if mixed and any(parameter in SNAPSHOT_INPUTS for parameter in inputs):
            raise TypeError(f"{function.__qualname__}: reads the snapshot, so it takes only layer and "
                            f"{', '.join(SNAPSHOT_INPUTS)}, not {mixed}")
        add(Entry(name, pane, function, inputs, place, title or name, weights, about, **traits))
        return function
    return register


def add(entry: Entry) -> None:
    """Register ``entry``; a name registered twice in one pane raises."""
    if entry.pane not in PANES:
        raise ValueError(f"{entry.name}: unknown pane {entry.pane!r}; panes: {', '.join(PANES)}")
    key = (entry.pane, entry.name)
    if key in _ENTRIES:
        raise ValueError(f"{entry.pane} pane: {entry.name} shown twice ({_ENTRIES[key].compute} and {entry.compute})")
    for trait, unset in UNIQUE_TRAITS.items():
        value = getattr(entry, trait)
        taken = [other.name for other in _ENTRIES.values()
                 if value is not unset and other.pane == entry.pane and getattr(other, trait) is value]
        if taken:
            raise ValueError(f"{entry.pane} pane: {entry.name} and {taken[0]} both have {trait}={value}")
    _ENTRIES[key] = entry


def _load() -> None:
    """Import every module of app.views and app.unit_images, so that their entries are registered."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import app.views

    importlib.import_module("app.unit_images")
    for module in pkgutil.iter_modules(app.views.__path__):
        importlib.import_module(f"app.views.{module.name}")


def entries(pane: str) -> Tuple[Entry, ...]:
    """The entries of ``pane`` in cycle order."""
    _load()
    return tuple(sorted((entry for entry in _ENTRIES.values() if entry.pane == pane), key=lambda e: e.place))


def names(pane: str, weights: Optional[bool] = None) -> Tuple[str, ...]:
    """The names of ``pane``'s cycle in order (weights True / False: only the weights views / the rest);
    the layers pane's activations and diffs are not in it (key a picks one of them)."""
    return tuple(entry.name for entry in entries(pane)
                 if entry.diffs is None and (weights is None or entry.weights == weights))


def entry(pane: str, name: str) -> Entry:
    _load()
    return _ENTRIES[(pane, name)]


def base(diffs: bool) -> Entry:
    """What the layers pane shows with no pattern mode: its diffs entry (key a) or its activations entry."""
    return next(entry for entry in entries("layers") if entry.diffs is diffs)


def shown(pattern: str, diffs: bool) -> Entry:
    """The layers pane's entry: the pattern mode ``pattern`` when one is on ("off": none), else ``base``."""
    return base(diffs) if pattern == "off" else entry("layers", pattern)


def toggled(pane: str) -> Optional[Entry]:
    """The entry of ``pane`` that its own key turns on and off (the back pane's x), if any."""
    return next((entry for entry in entries(pane) if entry.toggle), None)
