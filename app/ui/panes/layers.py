"""The layers pane: every unit of the selected layer as tiles (vector layers as small blocks),
forward activations (boosted, in the colormap) or backward diffs (red negative, green positive).

The selected unit is outlined in green and a frozen backprop origin in blue. Zoom shows the
selected unit, or the back pane, over the whole pane; pattern mode shows every unit's precomputed
image of the layer at once. A click on a tile selects its unit. A siamese pair shown "both" draws
each unit's tile as the pair, first image left, on one scale.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from app.ui import draw as paint
from app.ui.compute import Snapshot, order_request
from app.ui.panes import aux, back, jpgvis, pairs
from app.ui.panes.view import shown_values
from app.ui.state import AppState, Tiling
from app.views import registry
from app.views.ordering import ChannelOrder
from app.views.registry import Message, Picture, Tiles

PATTERN_TILE = 64   # pattern mode: each unit's image drawn in a square of this many pixels (before scaling)


def map_shape(shape: tuple) -> tuple:
    """C x H x W of the tiles of a layer with this per-sample shape (non-maps: one 1 x 1 tile per value)."""
    return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)) if shape else 1, 1, 1)


@dataclass(frozen=True)
class Layout:
    """Where the layers pane puts the selected layer's tiles: the grid, the channel order the
    tiles follow (None: unit order) and whether each tile shows a siamese pair."""

    grid: paint.Grid
    order: Optional[ChannelOrder] = None
    pairs: bool = False

    @property
    def tiling(self) -> Tiling:
        """What the cursor keys step over: tiles per row and the unit on each tile."""
        units = self.order.units if self.order is not None else range(self.grid.count)
        return Tiling(self.grid.columns, tuple(int(unit) for unit in units))

    def position_of(self, unit: int) -> int:
        return self.order.position_of(unit) if self.order is not None else unit

    def unit_at(self, position: int) -> int:
        return self.order.unit_at(position) if self.order is not None else position


def layout(state: AppState, snapshot: Optional[Snapshot], height: int, width: int) -> Layout:
    """The layers pane's tiles for ``state`` and the newest ``snapshot`` in a pane of height x width:
    the one answer both the drawing and the cursor keys use. Pattern mode tiles every unit's image
    in unit order; otherwise the tiles follow the snapshot's channel order when it ordered this
    layer the way the state asks, and are pairs while a siamese pair is shown "both"."""
    count, (tile_h, tile_w) = state.layer_info.units, state.layer_info.map_size
    if state.pattern != "off":
        return Layout(paint.grid_for(count, PATTERN_TILE, PATTERN_TILE, height, width))
    paired = len(shown_values(state, snapshot)) == 2
    if paired:
        tile_w = pairs.pair_width(tile_w)
    return Layout(paint.grid_for(count, tile_h, tile_w, height, width), _order(state, snapshot, count), paired)


def _order(state: AppState, snapshot: Optional[Snapshot], count: int) -> Optional[ChannelOrder]:
    """The snapshot's ChannelOrder of the selected layer when it ordered it the way the state asks."""
    if state.channel_order == "original" or snapshot is None or snapshot.request.order != order_request(state):
        return None
    order = snapshot.order
    return order if isinstance(order, ChannelOrder) and len(order.units) == count else None


def _no_value_reason(view) -> str:
    state = view.state
    if view.waiting:
        return view.waiting
    if state.show_diffs and state.backprop_mode == "off":
        return "no diffs: turn backprop on (b)"
    if state.show_diffs and "layer_diffs" not in registry.entry("back", state.backprop_mode).inputs:
        return f"no diffs: {state.backprop_mode} has no layer diffs (a: activations)"
    if state.show_diffs and view.snapshot is not None and view.snapshot.diffs is not None and not view.back_stale:
        return "no diffs here: this layer is above the backprop origin (nothing flows back into it)"
    return "computing ..."


def draw(view, height: int, width: int) -> np.ndarray:
    state = view.state
    if state.zoom == "unit":
        return aux.unit(view, height, width)
    if state.zoom == "backprop" and state.backprop_mode != "off":
        return back.draw(view, height, width)
    if state.pattern != "off":
        return pattern(view, height, width)
    values = view.shown_values()
    if values[0] is None:
        why = _no_value_reason(view)
        return paint.message(height, width, [why], view.font)
    shown = [paint.unit_maps(value) for value in values]   # C x H x W per image shown: one, or a siamese pair
    indiv = state.indiv_boosts[state.indiv_boost]
    tiles = pairs.side_by_side(shown, lambda maps: aux.colored(view, maps, indiv))
    peaks = np.stack([maps.reshape(len(maps), -1).max(axis=1) for maps in shown], axis=1)   # C x images
    placed = layout(state, view.snapshot, height, width)
    if placed.order is not None:
        tiles, peaks = placed.order.arrange(tiles), placed.order.arrange(peaks)
    pane = paint.tile(tiles, placed.grid, height, width)
    if state.score_overlay:
        _scores(pane, placed.grid, peaks, view.font * 0.8)
    _outlines(view, pane, placed)
    if state.show_diffs and not any(np.any(value) for value in values):
        band = paint.line_height(view.font) + 8
        pane[:band] = 30
        paint.text(pane, "diffs all zero: nothing flows back to this layer (the origin unit is not active?)",
                   (6, band - 6), view.font, view.color("title"), max_width=width - 12)
    return pane


def _outlines(view, pane: np.ndarray, placed: Layout) -> None:
    state = view.state
    if state.frozen_origin is not None and state.frozen_origin[0] == state.layer:
        paint.outline(pane, placed.grid, placed.position_of(state.frozen_origin[1]), view.color("frozen"))
    if not state.cursor_on_layers:
        paint.outline(pane, placed.grid, placed.position_of(min(state.unit, placed.grid.count - 1)),
                      view.color("unit"))


def _scores(pane: np.ndarray, layout: paint.Grid, peaks: np.ndarray, font: float) -> None:
    """Each tile's maximum (per image of a pair: "first|second") written on it, where the tiles
    are big enough to read; ``peaks`` is tiles x images."""
    if layout.cell(0)[3] < paint.text_width("|".join(["-0.00"] * peaks.shape[1]), font):
        return
    for index, tile_peaks in enumerate(peaks):
        top, left, height, _ = layout.cell(index)
        label = "|".join(f"{peak:.2g}" for peak in tile_peaks)
        paint.text(pane, label, (left + 2, top + height - 3), font, (80, 255, 255))


def pattern(view, height: int, width: int) -> np.ndarray:
    """The pattern mode's result, drawn by its type: Tiles tiled like the units (every unit's
    per-unit image from disk, filter, histogram ...), a Picture over the pane, or a Message."""
    shown = pattern_shown(view)
    if shown is None:
        return paint.message(height, width, [f"computing the {view.state.pattern} ..."], view.font)
    if isinstance(shown, Message):
        return paint.message(height, width, shown.text.split("\n"), view.font)
    if isinstance(shown, Picture):
        return paint.fit_into(shown.image, height, width, fill=30)
    placed = layout(view.state, view.snapshot, height, width)
    tiles = np.stack([paint.fit_into(picture, PATTERN_TILE, PATTERN_TILE, shown.sharp)
                      for picture in shown.pictures[:placed.grid.count]])
    pane = paint.tile(tiles, placed.grid, height, width)
    _outlines(view, pane, placed)
    return pane


def pattern_shown(view):
    """What the pattern mode shows of the selected layer: the per-unit images on disk as Tiles, or
    the snapshot's result (None while it is being computed)."""
    state = view.state
    if registry.entry("layers", state.pattern).compute is None:
        count = state.layer_info.units
        pictures = jpgvis.layer_pictures(view, state.pattern, count)
        if pictures is None:
            return Message("\n".join([f"pattern mode ({state.pattern}): no per-unit images of {view.layer_name}"]
                                     + jpgvis.where_to_find(view)))
        return Tiles(pictures)
    return view.pattern_result


def hit(view, y: int, x: int, height: int, width: int):
    if view.state.zoom != "normal" or (view.state.pattern != "off" and isinstance(pattern_shown(view), Picture)):
        return None   # one picture of the whole layer: no tile is a unit
    placed = layout(view.state, view.snapshot, height, width)
    index = placed.grid.index_at(y, x)
    return None if index is None else ("select_unit", placed.unit_at(index))
