"""The one table of what the panes can show: every mode is an entry, the app cycles through the
table's names, and the compute thread calls each entry with the inputs it names."""
import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from app.errors import DeepVisError
from app.inputs import Frame
from app.net.run import Run
from app.ui.app import App
from app.ui.compute import compute, request_for
from app.ui.state import BACKPROP_MODES, PATTERNS, WEIGHT_PATTERNS, AppState, LayerInfo, next_state
from app.views import registry
from app.ui.compute import Snapshot
from app.ui.panes.view import from_snapshot
from app.views.registry import Message, Picture, UnitMaps
from tests import ui_support

ROOT = Path(__file__).resolve().parents[1]


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

    def forward(self, images, outputs=None):
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


def test_activations_and_diffs_are_the_entries_the_layers_pane_shows_without_a_pattern_mode():
    activations, diffs = registry.base(False), registry.base(True)
    assert (activations.name, diffs.name) == ("activations", "diffs")
    assert activations.pane == diffs.pane == "layers" and activations.from_snapshot and diffs.from_snapshot
    assert "activations" not in PATTERNS and "diffs" not in PATTERNS   # key a picks them, not s
    assert registry.shown("off", True) is diffs and registry.shown("filters", True).name == "filters"
    layers = (LayerInfo("conv", 2, (2, 2)),)
    first, second = np.arange(8, dtype=np.float32).reshape(2, 2, 2), np.ones((2, 2, 2), np.float32)
    request = request_for(AppState(layers=layers), Frame((np.zeros((4, 4, 3), np.uint8),) * 2, "x.png"))
    pair = Snapshot(request, None, {"conv": second}, (), diffs={"conv": -second})
    snapshot = Snapshot(request, None, {"conv": first}, (), diffs={"conv": 0 * first}, second=pair)

    shown = from_snapshot(activations, AppState(layers=layers, siamese_view="both"), snapshot)
    assert isinstance(shown, UnitMaps) and not shown.signed and len(shown.maps) == 2
    np.testing.assert_array_equal(shown.maps[0], first)
    assert len(from_snapshot(activations, AppState(layers=layers), snapshot).maps) == 1   # "first": one image
    zero = from_snapshot(diffs, AppState(layers=layers, backprop_mode="grad", show_diffs=True), snapshot)
    assert zero.signed and "diffs all zero" in zero.note
    said = from_snapshot(diffs, AppState(layers=layers, show_diffs=True), snapshot)
    assert isinstance(said, Message) and "turn backprop on (b)" in said.text
    said = from_snapshot(diffs, AppState(layers=layers, backprop_mode="occlusion", show_diffs=True), snapshot)
    assert "occlusion has no layer diffs" in said.text
    assert from_snapshot(activations, AppState(layers=layers), None) is None             # nothing computed yet


def test_an_entry_reading_the_snapshot_takes_nothing_the_compute_thread_makes():
    with pytest.raises(TypeError, match="reads the snapshot, so it takes only layer"):
        registry.shows("mixed", "layers", place=99)(lambda net, shown_activations: None)
    with pytest.raises(ValueError, match="both have diffs=True"):
        registry.shows("more diffs", "layers", place=99, diffs=True)(lambda layer, shown_diffs: None)
    with pytest.raises(ValueError, match="more activations and activations both have diffs=False"):
        registry.shows("more activations", "layers", place=99, diffs=False)(lambda layer, shown_activations: None)


NEW_MODES = """
    import numpy as np

    from app.views.registry import Tiles, UnitMaps, shows
    from app.views.unit_maps import as_maps


    @shows("probe", "layers", place=98)
    def probe(net, layer):
        return Tiles(np.full((net.layer(layer).shape[0], 8, 8, 3), (0, 200, 255), np.uint8))


    @shows("negated", "layers", place=99)
    def negated(layer, shown_activations):
        return UnitMaps(tuple(-as_maps(values[layer]) for values in shown_activations), signed=True)
"""
SHOW_NEW_MODES = """
    import json, sys
    import cv2, numpy as np
    import app.views
    app.views.__path__.append(sys.argv[1])      # the new module sits in a folder of the package

    from app.inputs import open_source
    from app.ui.app import App, screenshot
    from app.ui.keys import help_entries
    from app.ui.state import PATTERNS
    from tests import ui_support

    net, settings = ui_support.mnist_net(), ui_support.settings()
    rect = App(net, settings).rects["layers"]
    shares = {}
    for name, color in (("probe", (0, 200, 255)), ("negated", None)):
        keys = "oo" + "s" * PATTERNS.index(name)
        out = screenshot(net, settings, open_source(sys.argv[2]), f"{sys.argv[1]}/{name}.png", keys)
        pane = cv2.imread(str(out))[rect.top:rect.top + rect.height, rect.left:rect.left + rect.width].astype(int)
        red = (pane[..., 2] > 100) & (pane[..., 1] < 50)       # negated ReLU outputs: red, never green
        shares[name] = float(np.mean(np.all(pane == color, axis=2))) if color else float(np.mean(red))
        shares[name + " green"] = float(np.mean((pane[..., 1] > 100) & (pane[..., 2] < 50)))
    print(json.dumps({"patterns": PATTERNS, "help": [text for _, text in help_entries()], "shares": shares}))
"""


def test_a_new_module_of_app_views_is_in_the_s_cycle_and_drawn_without_other_edits(testdata, tmp_path):
    (tmp_path / "new_modes.py").write_text(textwrap.dedent(NEW_MODES))
    digits = ui_support.write_images(tmp_path / "digits")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SHOW_NEW_MODES), str(tmp_path), str(digits)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["patterns"][-2:] == ["probe", "negated"] and seen["patterns"][0] == "off"
    assert any("/ probe / negated" in text for text in seen["help"])
    shares = seen["shares"]
    assert shares["probe"] > 0.3                       # the compute thread made its Tiles, the pane tiled them
    assert shares["negated"] > 0.01 and shares["negated green"] == 0   # the pane coloured its signed UnitMaps


def test_key_x_turns_on_and_off_the_back_pane_method_marked_toggle():
    from app.ui.keys import KEY_TABLE
    from app.ui.state import TOGGLED_METHOD

    assert TOGGLED_METHOD == registry.toggled("back").name == "occlusion"
    assert any(action == "toggle_occlusion" and text.startswith("occlusion saliency") for action, _, text in KEY_TABLE)
    with pytest.raises(ValueError, match="both have toggle=True"):
        registry.shows("another", "back", place=99, toggle=True)(lambda run, origin: None)
    assert registry.toggled("layers") is None


def test_the_layers_pane_tiles_what_reads_the_snapshot_at_map_size_even_while_it_says_why_not():
    from app.ui.panes.layers import layout

    layers = (LayerInfo("conv", 30, (5, 9)),)
    activations = layout(AppState(layers=layers), None, 300, 300).tiling
    diffs = layout(AppState(layers=layers, show_diffs=True), None, 300, 300).tiling   # "no diffs: turn backprop on"
    filters = layout(AppState(layers=layers, pattern="filters"), None, 300, 300).tiling
    assert activations == diffs and activations.columns != filters.columns   # the cursor keys step alike
