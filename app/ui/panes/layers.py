"""The layers pane: what the registry's entry for the state shows (app/views/registry.py), drawn by
its type. UnitMaps (the activations, or the diffs with key a): every unit of the selected layer as
tiles of its own size (vector layers as small blocks), boosted in the colormap or red negative /
green positive; a siamese pair shown "both" draws each unit's tile as the pair, first image left,
on one scale. Tiles (a pattern mode: every unit's per-unit image, filter, histogram ...): one
square per unit. Picture: over the whole pane. Message: why there is nothing to show.

The selected unit is outlined in green and a frozen backprop origin in blue. Zoom shows the
selected unit, or the back pane, over the whole pane. A click on a tile selects its unit.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from app.ui import draw as paint
from app.ui.compute import Snapshot, order_request
from app.ui.panes import aux, back, jpgvis, pairs
from app.ui.panes.view import from_snapshot
from app.ui.state import AppState, Tiling
from app.views import registry
from app.views.ordering import ChannelOrder
from app.views.registry import Message, Picture, Tiles, UnitMaps

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
    the one answer both the drawing and the cursor keys use. An entry reading the snapshot (the
    activations, the diffs) is tiled at the maps' size, in the snapshot's channel order when it
    ordered this layer the way the state asks, as pairs while its UnitMaps hold a siamese pair;
    Tiles, Pictures and the compute thread's results in squares, in unit order."""
    count, (tile_h, tile_w) = state.layer_info.units, state.layer_info.map_size
    entry = registry.shown(state.pattern, state.show_diffs)
    shown = from_snapshot(entry, state, snapshot, back_current=False) if entry.from_snapshot else None
    if not entry.from_snapshot or isinstance(shown, (Tiles, Picture)):
        return Layout(paint.grid_for(count, PATTERN_TILE, PATTERN_TILE, height, width))
    paired = isinstance(shown, UnitMaps) and len(shown.maps) == 2
    if paired:
        tile_w = pairs.pair_width(tile_w)
    return Layout(paint.grid_for(count, tile_h, tile_w, height, width), _order(state, snapshot, count), paired)


def _order(state: AppState, snapshot: Optional[Snapshot], count: int) -> Optional[ChannelOrder]:
    """The snapshot's ChannelOrder of the selected layer when it ordered it the way the state asks."""
    if state.channel_order == "original" or snapshot is None or snapshot.request.order != order_request(state):
        return None
    order = snapshot.order
    return order if isinstance(order, ChannelOrder) and len(order.units) == count else None


def draw(view, height: int, width: int) -> np.ndarray:
    state = view.state
    if state.zoom == "unit":
        return aux.unit(view, height, width)
    if state.zoom == "backprop" and state.backprop_mode != "off":
        return back.draw(view, height, width)
    entry, shown = shown_entry(view)
    if shown is None or isinstance(shown, Message):
        lines = [view.waiting] if view.waiting else (
            shown.text.split("\n") if shown is not None else [f"computing the {entry.name} ..."])
        return paint.message(height, width, lines, view.font)
    if isinstance(shown, Picture):
        return paint.fit_into(shown.image, height, width, fill=30)
    placed = layout(state, view.snapshot, height, width)
    if isinstance(shown, Tiles):
        tiles = np.stack([paint.fit_into(picture, PATTERN_TILE, PATTERN_TILE, shown.sharp)
                          for picture in shown.pictures[:placed.grid.count]])
        pane = paint.tile(tiles, placed.grid, height, width)
        _outlines(view, pane, placed)
        return pane
    return unit_maps(view, shown, placed, height, width)


def unit_maps(view, shown: UnitMaps, placed: Layout, height: int, width: int) -> np.ndarray:
    """Every unit's maps as tiles coloured with the state's boosts and colormap (signed: red / green),
    a siamese pair's two side by side, each tile's maximum on it with the score overlay, and the
    result's note (why every map is all zero) over the tiles."""
    state = view.state
    indiv = state.indiv_boosts[state.indiv_boost]
    tiles = pairs.side_by_side(list(shown.maps), lambda maps: aux.colored(view, maps, shown.signed, indiv))
    peaks = np.stack([maps.reshape(len(maps), -1).max(axis=1) for maps in shown.maps], axis=1)   # C x images
    if placed.order is not None:
        tiles, peaks = placed.order.arrange(tiles), placed.order.arrange(peaks)
    pane = paint.tile(tiles, placed.grid, height, width)
    if state.score_overlay:
        _scores(pane, placed.grid, peaks, view.font * 0.8)
    _outlines(view, pane, placed)
    if shown.note:
        band = paint.line_height(view.font) + 8
        pane[:band] = 30
        paint.text(pane, shown.note, (6, band - 6), view.font, view.color("title"), max_width=width - 12)
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


def shown_entry(view) -> tuple:
    """(entry, result) of what the layers pane shows of the selected layer (app/views/registry.py):
    the per-unit images on disk as Tiles, an entry reading the snapshot computed now, or the
    snapshot's result of a pattern mode (None while it is being computed)."""
    state = view.state
    entry = registry.shown(state.pattern, state.show_diffs)
    if entry.compute is None:
        pictures = jpgvis.layer_pictures(view, entry.name, state.layer_info.units)
        if pictures is None:
            return entry, Message("\n".join([f"pattern mode ({entry.name}): no per-unit images of {view.layer_name}"]
                                             + jpgvis.where_to_find(view)))
        return entry, Tiles(pictures)
    if entry.from_snapshot:
        return entry, from_snapshot(entry, state, view.snapshot, not view.back_stale)
    return entry, view.pattern_result


def hit(view, y: int, x: int, height: int, width: int):
    if view.state.zoom != "normal" or isinstance(shown_entry(view)[1], Picture):
        return None   # one picture of the whole layer: no tile is a unit
    placed = layout(view.state, view.snapshot, height, width)
    index = placed.grid.index_at(y, x)
    return None if index is None else ("select_unit", placed.unit_at(index))
