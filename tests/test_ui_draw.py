"""Drawing helpers: tile geometry and hit testing agree, boost, diff colours, backprop views, layout."""
import numpy as np
import pytest

from app.errors import DeepVisError
from app.ui import draw, panes


@pytest.mark.parametrize("count, tile", [(8, (28, 28)), (144, (56, 56)), (1000, (1, 1)), (3, (120, 160))])
def test_every_tile_is_found_where_it_is_drawn(count, tile):
    grid = draw.grid_for(count, *tile, 870, 900)
    assert grid.columns * grid.rows >= count
    for index in range(count):
        top, left, height, width = grid.cell(index)
        assert top + height <= 870 and left + width <= 900
        assert grid.index_at(top + height // 2, left + width // 2) == index
    assert grid.index_at(-5, -5) is None


def test_tiles_land_in_their_cells():
    tiles = np.stack([np.full((10, 10, 3), 20 * i, np.uint8) for i in range(1, 7)])
    grid = draw.grid_for(6, 10, 10, 200, 300)
    pane = draw.tile(tiles, grid, 200, 300)
    for index in range(6):
        top, left, height, width = grid.cell(index)
        assert np.all(pane[top + height // 2, left + width // 2] == 20 * (index + 1))


def test_boost_scales_channels_then_gamma():
    maps = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 4.0)]).astype(np.float32)
    maps[:, 0, 0] = 0
    plain = draw.boost(maps)
    assert plain.min() == 0 and plain.max() == 1 and plain[0, 1, 1] == pytest.approx(0.25)
    assert draw.boost(maps, indiv=1.0)[0, 1, 1] == pytest.approx(1.0)       # each channel to its own max
    assert draw.boost(maps, gamma=0.5)[0, 1, 1] == pytest.approx(0.5)


def test_signed_colors_red_negative_green_positive():
    colors = draw.signed_colors(np.array([[[-2.0, 0.0, 1.0]]], np.float32), percentile=100)
    assert list(colors[0, 0, 0]) == [0, 0, 255] and list(colors[0, 0, 1]) == [0, 0, 0]
    assert list(colors[0, 0, 2]) == [0, 127, 0]


def test_one_hot_diff_does_not_darken_the_other_tiles():
    maps = np.full((4, 10, 10), 1.0, np.float32)
    maps[0, 0, 0] = 1000.0
    green = draw.signed_colors(maps)[..., 1]
    assert green[1:].min() == 255 and green[0, 0, 0] == 255   # the hot value saturates
    assert draw.signed_colors(maps, percentile=100)[1:, ..., 1].max() == 0   # by the max: black


def test_backprop_views():
    diff = np.zeros((20, 20, 3), np.float32)
    diff[5, 5] = (1, -2, 3)
    raw = draw.backprop_map(diff, "raw")
    assert raw.shape == (20, 20, 3) and raw[0, 0, 0] == 0.5 and raw[5, 5, 2] == 1.0
    gray = draw.backprop_map(diff, "gray")
    assert gray.shape == (20, 20) and gray[5, 5] == pytest.approx(1.0) and gray[0, 0] == 0.5
    norm = draw.backprop_map(diff, "norm")
    assert norm.max() == 1 and norm[0, 0] == 0
    blurred = draw.backprop_map(diff, "normblur", 2.0)
    assert blurred[5, 7] > 0 and blurred.max() == pytest.approx(1)
    assert draw.backprop_map(-diff, "sum>0").max() == 0


def test_one_hot_pixel_does_not_flatten_a_backprop_view():
    rng = np.random.default_rng(0)
    diff = rng.normal(size=(50, 50, 3)).astype(np.float32)
    diff[3, 3] = 1000.0
    for view in ("raw", "gray", "norm", "normblur", "sum>0"):
        low, high = np.percentile(draw.backprop_map(diff, view), [1, 99])
        assert high - low > 0.5, view
    low, high = np.percentile(draw.backprop_map(diff, "raw", percentile=100), [1, 99])
    assert high - low < 0.02      # the old max scaling: flat gray
    assert draw.histogram(diff, 100, 200).shape == (100, 200, 3)


def test_colormaps_and_overlay():
    values = np.linspace(0, 1, 50).reshape(5, 10)
    assert np.all(draw.colorize(values, "gray")[..., 0] == draw.colorize(values, "gray")[..., 2])
    jet = draw.colorize(values, "jet")
    assert jet[0, 0, 0] > jet[0, 0, 2] and jet[-1, -1, 2] > jet[-1, -1, 0]     # blue to red
    image = np.full((5, 10, 3), 200, np.uint8)
    assert draw.overlay(image, values, "over active")[0, 0, 0] == 0
    assert draw.overlay(image, values, "over inactive")[0, 0, 0] == 200
    assert draw.overlay(image, values, "off") is image


def test_layout_scales_and_rejects_unknown_panes():
    rects = panes.layout({"input": (0, 0, 300, 300), "status": (300, 0, 30, 600)}, scale=0.5)
    assert rects["status"] == panes.Rect(150, 0, 15, 300)
    assert panes.window_size(rects) == (165, 300)
    with pytest.raises(DeepVisError, match="unknown pane 'graph'"):
        panes.layout({"graph": (0, 0, 1, 1)})


def test_text_is_cut_short_to_its_width():
    line = "blocks.4.0.dw:17  max -3.23e+03 | -336 and more words than fit"
    short, full = np.zeros((30, 150, 3), np.uint8), np.zeros((30, 800, 3), np.uint8)
    draw.text(short, line, (0, 20), max_width=100)
    draw.text(full, line, (0, 20), max_width=800)
    assert np.any(short[:, 90:100]) and not np.any(short[:, 101:])   # written up to the limit, not past it
    assert np.any(full[:, 300:])                                      # a line that fits is left whole
