"""The one table of what the panes can show: every mode is an entry, the app cycles through the
table's names, and the compute thread calls each entry with the inputs it names."""
import types

import numpy as np
import pytest

from app.errors import DeepVisError
from app.inputs import Frame
from app.net.run import Run
from app.ui.app import App
from app.ui.compute import compute, request_for
from app.ui.state import BACKPROP_MODES, PATTERNS, WEIGHT_PATTERNS, AppState, LayerInfo, next_state
from app.views import registry
from app.views.registry import Picture
from tests import ui_support


def test_every_pattern_mode_and_back_pane_method_is_one_entry():
    assert PATTERNS == ("off",) + registry.names("layers")
    assert BACKPROP_MODES == ("off",) + registry.names("back")
    assert set(WEIGHT_PATTERNS) == {"filters", "weights histogram", "weights correlation", "weight grads"}
    for name in ("opt", "maxim", "deconv", "activation histogram", "activation correlation") + WEIGHT_PATTERNS:
        assert name in PATTERNS
    for name in ("grad", "deconv", "guided", "desalinet", "occlusion"):
        assert name in BACKPROP_MODES
    for pane in registry.PANES:
        for entry in registry.entries(pane):
            assert set(entry.inputs) <= set(registry.INPUTS), entry.name


def test_a_name_shown_twice_or_an_unknown_input_is_refused():
    with pytest.raises(ValueError, match="filters shown twice"):
        registry.shows("filters", "layers", place=99)(lambda net, layer: None)
    with pytest.raises(TypeError, match="unknown inputs \\['colour'\\]"):
        registry.shows("painted", "layers", place=99)(lambda net, colour: None)
    with pytest.raises(ValueError, match="unknown pane 'side'"):
        registry.shows("painted", "side", place=99)(lambda net: None)
    assert "painted" not in registry.names("layers")


def test_the_pattern_keys_cycle_the_registered_names():
    state = AppState(layers=(LayerInfo("conv", 4, (3, 3)),))
    seen = []
    for _ in range(len(PATTERNS)):
        state = next_state(state, "next_pattern")
        seen.append(state.pattern)
    assert tuple(seen) == PATTERNS[1:] + ("off",)
    assert next_state(state, "previous_backprop_mode").backprop_mode == BACKPROP_MODES[-1]


class TinyNet:
    """A net with one layer of two 2 x 2 maps, without classes."""

    def __init__(self):
        self.spec = types.SimpleNamespace(input=types.SimpleNamespace(size=(4, 4), image_size=lambda: (4, 4)),
                                          name="tiny")
        self.input_name, self.layers, self.labels = "data", [types.SimpleNamespace(name="conv")], None

    def forward(self, images):
        batch = np.zeros((len(images), 3, 4, 4), np.float32)
        return Run(self, batch, {"conv": np.zeros((len(images), 2, 2, 2), np.float32)})

    def prob_layer(self):
        return None


def test_compute_calls_an_entry_with_the_inputs_it_names(monkeypatch):
    calls = []
    fake = registry.Entry("filters", "layers", lambda layer, stats_folder: calls.append((layer, stats_folder))
                          or Picture(np.full((5, 5, 3), 200, np.uint8)), ("layer", "stats_folder"), 30, weights=True)
    monkeypatch.setitem(registry._ENTRIES, ("layers", "filters"), fake)
    state = AppState(layers=(LayerInfo("conv", 2, (2, 2)),), pattern="filters", dataset_stats="/runs/maxes")
    frame = Frame((np.zeros((4, 4, 3), np.uint8),), "x.png")
    request = request_for(state, frame)
    assert request.pattern.name == "filters" and dict(request.pattern.inputs) == {"stats_folder": "/runs/maxes"}
    snapshot = compute(TinyNet(), request)
    assert calls == [("conv", "/runs/maxes")] and isinstance(snapshot.pattern, Picture)
    assert request_for(state, frame) == request                       # the same inputs: the same request



def test_a_start_up_backprop_mode_not_in_the_registry_is_refused_in_one_line():
    with pytest.raises(DeepVisError, match="settings: backprop_mode 'gard': choose from off, grad, deconv"):
        App(ui_support.mnist_net(), ui_support.settings(backprop_mode="gard"))
