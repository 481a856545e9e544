"""What every pane draws from: the state, the newest snapshot and facts about the net and input."""
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from app.inputs import Frame
from app.ui.compute import Request, Snapshot
from app.ui.optimizer import Progress
from app.ui.state import AppState
from app.views import registry


@dataclass(frozen=True)
class NetInfo:
    """Facts about the net that do not change while the app runs."""

    model_name: str
    names: Tuple[str, ...]                 # layer names, in order
    pretty_names: Tuple[str, ...]          # what the layer list shows
    shapes: Tuple[tuple, ...]              # per-sample shapes
    receptive_fields: Dict[str, int] = field(default_factory=dict)   # layer -> size in pixels
    labels: Optional[Tuple[str, ...]] = None
    input_size: Tuple[int, int] = (224, 224)  # H, W of the images the net sees
    # pre-activation layer -> the activation layer reading it (one blob in Caffe; find_maxes scores
    # the activation only, and the jpgvis pane shows its images for both)
    activations: Dict[str, str] = field(default_factory=dict)
    class_layers: Tuple[str, ...] = ()     # the logits layer, then the probability layer (when it differs)
    random_weights_seed: Optional[int] = None   # the weights are random, drawn from this seed


def from_snapshot(entry: registry.Entry, state: AppState, snapshot: Optional[Snapshot], back_current: bool = True):
    """The result of a layers-pane ``entry`` that reads the snapshot (registry.SNAPSHOT_INPUTS), on
    the selected layer of the images shown: the first, and the second while a siamese pair is shown
    "both". back_current: the snapshot's backward pass is the one asked for now."""
    shots = [] if snapshot is None else [snapshot]
    if shots and snapshot.second is not None and state.siamese_view == "both":
        shots.append(snapshot.second)
    available = {"layer": state.layer_info.name,
                 "shown_activations": tuple(shot.activations for shot in shots),
                 "shown_diffs": tuple(shot.diffs for shot in shots) if shots and snapshot.diffs is not None else None,
                 "back_method": None if state.backprop_mode == "off" else state.backprop_mode,
                 "back_current": back_current}
    return entry.compute(**{name: available[name] for name in entry.inputs})


@dataclass(frozen=True)
class View:
    """One frame's worth of everything the panes need; built by the app, read by the panes."""

    state: AppState
    net: NetInfo
    settings: object
    frame: Optional[Frame] = None
    snapshot: Optional[Snapshot] = None
    current: Optional[Request] = None      # the request the state makes now
    unit_image: Callable[[object], Optional[np.ndarray]] = lambda path: None
    fps: float = 0.0
    message: str = ""                      # one line for the status bar (errors, input messages)
    volume: Optional[np.ndarray] = None    # the 3-D view's newest picture (key 3)
    frozen: bool = False                   # the camera or video is paused (key f)
    optimizing: Optional[Progress] = None  # the selected unit's on-demand optimization (key 2)

    @property
    def font(self) -> float:
        """Text scale: settings.global_font_size times the window scale."""
        return 0.5 * self.settings.global_font_size * self.settings.global_scale

    def color(self, name: str) -> tuple:
        return tuple(self.settings.ui_colors[name])

    @property
    def waiting(self) -> str:
        """Why nothing is computed: the input's message while it has no image (a camera not found
        yet), else ""."""
        return self.frame.message if self.frame is not None and self.frame.waiting else ""

    @property
    def layer_name(self) -> str:
        return self.net.names[self.state.layer]

    def activation(self, name: str = None) -> Optional[np.ndarray]:
        """The newest snapshot's activation of ``name`` (default: the selected layer), or None."""
        if self.snapshot is None:
            return None
        return self.snapshot.activations.get(name or self.layer_name)

    def diff(self, name: str = None) -> Optional[np.ndarray]:
        if self.snapshot is None or self.snapshot.diffs is None:
            return None
        return self.snapshot.diffs.get(name or self.layer_name)

    @property
    def pair(self) -> Optional[Snapshot]:
        """The second image's results while a siamese pair is shown "both" (else None): the panes
        draw it beside the first image's."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.second is None or self.state.siamese_view != "both":
            return None
        return snapshot.second

    def unit_maps(self):
        """What the layers pane shows with no pattern mode, activations or diffs as key a picks
        (app/views/unit_maps.py): UnitMaps, a Message, or None while it is being computed."""
        return from_snapshot(registry.base(self.state.show_diffs), self.state, self.snapshot, not self.back_stale)

    @property
    def pattern_result(self):
        """The snapshot's result (Tiles, Picture or Message) of the pattern mode the state shows, on
        the selected layer; None until one is computed."""
        snapshot, state = self.snapshot, self.state
        asked = snapshot.request.pattern if snapshot is not None else None
        if asked is None or (asked.name, asked.layer) != (state.pattern, self.layer_name):
            return None
        return snapshot.pattern

    @property
    def back_stale(self) -> bool:
        """The back pane shows another frame or origin than the one asked for now."""
        if self.snapshot is None or self.current is None:
            return False
        asked, shown = self.current, self.snapshot.request
        return asked.backprop != shown.backprop or asked.frame is not shown.frame
