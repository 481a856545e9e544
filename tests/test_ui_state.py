"""Pure state transitions: cursor, layers, cycles, freezing, zoom, reset."""
import types
from dataclasses import replace

import numpy as np
import pytest

from app.ui.compute import order_request
from app.ui.panes.layers import layout
from app.ui.state import BACKPROP_MODES, AppState, LayerInfo, Tiling, next_state
from app.views.ordering import ChannelOrder

COLUMNS = {"conv1": 3, "conv2": 4, "fc": 4}   # tiles per row of each layer in the layers pane


def make_state(**fields) -> AppState:
    layers = (LayerInfo("conv1", 8, (6, 6)), LayerInfo("conv2", 16, (3, 3)), LayerInfo("fc", 10))
    return AppState(layers=layers, **fields)


def run(state, *actions, tiling=None):
    """``state`` after ``actions``, the cursor keys stepping over ``tiling`` (default: the selected
    layer's tiles in unit order, COLUMNS per row)."""
    for action in actions:
        info = state.layer_info
        shown = tiling or Tiling(COLUMNS[info.name], tuple(range(info.units)))
        state = next_state(state, action, shown)
    return state


def test_cursor_moves_within_the_layer():
    state = run(make_state(), "right", "right", "down")
    assert state.unit == 5
    assert run(state, "fast_left").unit == 2
    assert run(state, "down", "down").unit == 7          # clamped to the last unit
    assert run(make_state(), "left").unit == 0


def test_up_from_the_top_row_goes_to_the_layer_list_and_arrows_change_layer():
    state = run(make_state(), "right", "up")
    assert state.cursor_on_layers
    state = run(state, "right")
    assert (state.layer, state.cursor_on_layers) == (1, True)
    assert not run(state, "down").cursor_on_layers


def test_layer_keys_clamp_and_keep_the_unit_in_range():
    state = run(make_state(layer=1, unit=15), "next_layer")
    assert (state.layer, state.unit) == (2, 9)
    assert run(state, "next_layer").layer == 2
    assert run(make_state(), "previous_layer").layer == 0


def test_cycles_wrap_in_both_directions():
    state = make_state()
    assert run(state, "next_backprop_mode").backprop_mode == "grad"
    assert run(state, "previous_backprop_mode").backprop_mode == BACKPROP_MODES[-1]
    assert run(state, "toggle_occlusion").backprop_mode == "occlusion"
    assert run(state, "next_channel_order", "next_channel_order").channel_order == "pca"
    assert run(state, "toggle_volume_view").volume_view and not run(state, "export_volume").volume_view
    assert run(state, "next_weights_view").pattern == "filters"
    assert run(state, "next_pattern", "previous_weights_view").pattern == "weight grads"
    assert run(state, "next_backprop_mode", "toggle_occlusion", "toggle_occlusion").backprop_mode == "off"
    assert run(state, *["next_backprop_view"] * 6).backprop_view == "raw"
    assert run(state, "previous_colormap").colormap == "cool"
    assert run(state, *["next_gamma_boost"] * 4).gamma_boost == 0


def test_zoom_skips_the_backprop_pane_when_backprop_is_off():
    assert run(make_state(), "cycle_zoom", "cycle_zoom").zoom == "normal"
    assert run(make_state(backprop_mode="grad"), "cycle_zoom", "cycle_zoom").zoom == "backprop"


def test_freezing_the_backprop_origin():
    state = run(make_state(), "right", "freeze_backprop", "next_layer", "right")
    assert state.backprop_origin == (0, 1)
    assert run(state, "freeze_backprop").backprop_origin == (1, 2)


def test_reset_keeps_the_boost_choices_and_clears_the_rest():
    state = run(make_state(indiv_boosts=(0.0, 0.5)), "next_layer", "right", "next_backprop_mode",
                "next_indiv_boost", "toggle_diffs", "reset")
    assert (state.layer, state.unit, state.backprop_mode, state.indiv_boost, state.show_diffs) == (0, 0, "off", 0, False)
    assert state.indiv_boosts == (0.0, 0.5)


def test_clicks_select_layer_and_unit():
    state = next_state(make_state(), ("select_layer", 1))
    assert (state.layer, state.cursor_on_layers) == (1, True)
    state = next_state(state, ("select_unit", 12))
    assert (state.unit, state.cursor_on_layers) == (12, False)


def test_input_actions_and_quit():
    state = make_state()
    assert next_state(state, "next_image") is state
    assert run(state, "quit").quit


def test_cursor_steps_through_reordered_tiles_as_shown():
    shown = Tiling(3, (7, 0, 5, 1, 6, 2, 4, 3))          # conv1: 8 units, 3 columns, unit 0 shown second
    state = make_state()
    assert run(state, "right", tiling=shown).unit == 5 and run(state, "down", tiling=shown).unit == 6
    assert run(state, "left", tiling=shown).unit == 7
    assert run(state, ("select_unit", 3), "up", tiling=shown).unit == 6      # last tile -> the one above it
    assert run(state, "up", tiling=shown).cursor_on_layers


def test_cursor_moves_over_units_need_the_tiles():
    with pytest.raises(ValueError, match="tiling"):
        next_state(make_state(), "down")
    assert next_state(make_state(cursor_on_layers=True), "right").layer == 1   # the layer list needs none


def snapshot_of(state, order=None, pair=False):
    """A snapshot as the layers pane reads it: the selected layer's activation, the channel order
    it computed for the request the state made, and a siamese pair's second image."""
    info = state.layer_info
    activations = {info.name: np.ones((info.units,) + info.map_size, np.float32)}
    request = types.SimpleNamespace(order=order_request(state))
    second = types.SimpleNamespace(activations=activations, diffs=None) if pair else None
    return types.SimpleNamespace(request=request, order=order, activations=activations, diffs=None, second=second)


def test_the_layers_pane_layout_follows_the_snapshot_as_drawn():
    state = make_state(channel_order="pca")                 # conv1: 8 maps of 6 x 6
    order = ChannelOrder((7, 0, 5, 1, 6, 2, 4, 3))
    plain = layout(state, None, 200, 200)
    assert plain.tiling.units == tuple(range(8)) and not plain.pairs
    ordered = layout(state, snapshot_of(state, order), 200, 200)
    assert ordered.tiling == Tiling(plain.grid.columns, order.units)
    assert run(state, "right", tiling=ordered.tiling).unit == 5
    for changed in ("next_channel_order", "next_order_source", "next_layer", "next_pattern"):
        # the snapshot's order was made for another request: unit order until a new one comes
        later = run(state, changed)
        assert layout(later, snapshot_of(state, order), 200, 200).order is None
    paired = layout(replace(state, siamese_view="both"), snapshot_of(state, pair=True), 200, 200)
    assert paired.pairs and paired.grid.columns < plain.grid.columns      # wider tiles: fewer per row
    assert not layout(state, snapshot_of(state, pair=True), 200, 200).pairs   # "first": one image shown
    assert run(state, "down", tiling=paired.tiling).unit == paired.grid.columns


def test_order_source_cycles_and_reset_keeps_the_statistics_folder():
    state = make_state(dataset_stats="/runs/maxes")
    assert run(state, "next_order_source").order_source == "dataset"
    assert run(state, "next_order_source", "next_order_source").order_source == "input"
    assert run(state, "next_order_source").channel_order == "kmeans"                   # visible at once
    assert run(state, "next_channel_order", "next_channel_order", "next_order_source").channel_order == "pca"
    reset = run(state, "next_order_source", "next_channel_order", "reset")
    assert (reset.order_source, reset.channel_order, reset.dataset_stats) == ("input", "original", "/runs/maxes")
