"""Drawing helpers: tiling, boost, colormaps, backprop views, overlays, text. Arrays in, image out."""
import math
from dataclasses import dataclass

import cv2
import numpy as np

from app.views.scaling import PERCENTILE, magnitude_unit, signed_gray, signed_unit

FONT = cv2.FONT_HERSHEY_SIMPLEX
COLORMAP_CODES = {name: getattr(cv2, f"COLORMAP_{name.upper()}") for name in
                  ("jet", "plasma", "viridis", "inferno", "magma", "turbo", "hot", "bone", "cool")}
MAX_CELL_FOR_POINTS = 40   # a 1 x 1 unit (a vector layer's) is drawn at most this big


# -- text ------------------------------------------------------------------------------------
def drawable(line: str) -> str:
    """The text with what OpenCV cannot draw replaced by "?". NOTE: a file name that is not UTF-8
    reaches Python with surrogates in it, and cv2.putText crashes the process on them."""
    return line.encode("utf-8", "replace").decode("utf-8")


def text(image, line: str, origin, scale: float = 0.5, color=(230, 230, 230), thickness: int = 1,
         max_width: int = None):
    """Write one line (origin = left end of the baseline), cut short with ".." where it would pass
    max_width pixels; returns the image."""
    line = drawable(line)
    if max_width is not None and text_width(line, scale, thickness) > max_width:
        while line and text_width(line + "..", scale, thickness) > max_width:
            line = line[:-1]
        line += ".."
    cv2.putText(image, line, (int(origin[0]), int(origin[1])), FONT, scale, color, thickness, cv2.LINE_AA)
    return image


def text_width(line: str, scale: float = 0.5, thickness: int = 1) -> int:
    return cv2.getTextSize(drawable(line), FONT, scale, thickness)[0][0]


def line_height(scale: float) -> int:
    return int(round(28 * scale)) + 2


def message(height: int, width: int, lines, scale: float = 0.5, color=(120, 160, 255)) -> np.ndarray:
    """A dark pane holding a short message (wrapped to the pane's width)."""
    image = np.full((height, width, 3), 30, np.uint8)
    columns = max(8, int(width / (20 * scale)))
    wrapped = [chunk for line in lines for chunk in wrap(line, columns)]
    for row, line in enumerate(wrapped):
        text(image, line, (8, 8 + line_height(scale) * (row + 1)), scale, color)
    return image


def wrap(line: str, columns: int):
    """The words of ``line`` in lines of at most ``columns`` characters (long words cut)."""
    words = [word[i:i + columns] for word in line.split() for i in range(0, len(word), columns)]
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > columns:
            yield current
            current = word
        else:
            current = f"{current} {word}".strip()
    yield current


# -- fitting and tiling ----------------------------------------------------------------------
def fit_into(image: np.ndarray, height: int, width: int, nearest: bool = False, fill: int = 0) -> np.ndarray:
    """``image`` scaled to fit ``height`` x ``width`` keeping its aspect ratio, centred on ``fill``."""
    canvas = np.full((height, width, 3), fill, np.uint8)
    scale = min(height / image.shape[0], width / image.shape[1])
    new_h, new_w = max(1, int(image.shape[0] * scale)), max(1, int(image.shape[1] * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)
    if resized.ndim == 2:
        resized = cv2.cvtColor(resized, cv2.COLOR_GRAY2BGR)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = resized
    return canvas


@dataclass(frozen=True)
class Grid:
    """Where n tiles of tile_h x tile_w go in a pane: columns, rows, scale, offset (pane pixels)."""

    count: int
    columns: int
    rows: int
    tile_h: int
    tile_w: int
    scale: float
    top: int
    left: int
    pad: int = 1

    def cell(self, index: int):
        """(top, left, height, width) of tile ``index`` in the pane."""
        row, col = divmod(index, self.columns)
        pitch_h, pitch_w = (self.tile_h + self.pad) * self.scale, (self.tile_w + self.pad) * self.scale
        return (int(self.top + row * pitch_h), int(self.left + col * pitch_w),
                max(1, int(self.tile_h * self.scale)), max(1, int(self.tile_w * self.scale)))

    def index_at(self, y: int, x: int):
        """The tile under pane pixel (y, x), or None."""
        pitch_h, pitch_w = (self.tile_h + self.pad) * self.scale, (self.tile_w + self.pad) * self.scale
        row, col = math.floor((y - self.top) / pitch_h), math.floor((x - self.left) / pitch_w)
        index = row * self.columns + col
        if 0 <= row < self.rows and 0 <= col < self.columns and index < self.count:
            return index
        return None


def grid_for(count: int, tile_h: int, tile_w: int, height: int, width: int, pad: int = 1) -> Grid:
    """The grid that shows ``count`` tiles biggest in a ``height`` x ``width`` pane."""
    columns = np.arange(1, count + 1)
    rows = -(-count // columns)
    scales = np.minimum(width / (columns * (tile_w + pad)), height / (rows * (tile_h + pad)))
    best = int(np.argmax(scales))
    scale = float(scales[best])
    if tile_h * tile_w == 1:
        scale = min(scale, MAX_CELL_FOR_POINTS / 2)
    columns, rows = int(columns[best]), int(rows[best])
    used_h, used_w = rows * (tile_h + pad) * scale, columns * (tile_w + pad) * scale
    return Grid(count, columns, rows, tile_h, tile_w, scale, int((height - used_h) / 2), int((width - used_w) / 2), pad)


def tile(tiles: np.ndarray, grid: Grid, height: int, width: int, background: int = 50) -> np.ndarray:
    """N x h x w x 3 uint8 tiles drawn on a ``height`` x ``width`` pane as ``grid`` says."""
    count, tile_h, tile_w = tiles.shape[:3]
    pad = grid.pad
    mosaic = np.full((grid.rows * (tile_h + pad), grid.columns * (tile_w + pad), 3), background, np.uint8)
    padded = np.full((grid.rows * grid.columns, tile_h + pad, tile_w + pad, 3), background, np.uint8)
    padded[:count, :tile_h, :tile_w] = tiles
    mosaic[:] = (padded.reshape(grid.rows, grid.columns, tile_h + pad, tile_w + pad, 3)
                 .transpose(0, 2, 1, 3, 4).reshape(mosaic.shape))
    size = (max(1, round(mosaic.shape[1] * grid.scale)), max(1, round(mosaic.shape[0] * grid.scale)))
    scaled = cv2.resize(mosaic, size, interpolation=_interpolation(grid.scale))
    pane = np.full((height, width, 3), background, np.uint8)
    h, w = min(height - grid.top, scaled.shape[0]), min(width - grid.left, scaled.shape[1])
    pane[grid.top:grid.top + h, grid.left:grid.left + w] = scaled[:h, :w]
    return pane


def _interpolation(scale: float) -> int:
    """Nearest up (crisp units), linear down to half size, area below (INTER_AREA is 5x slower)."""
    if scale >= 1:
        return cv2.INTER_NEAREST
    return cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA


def outline(pane: np.ndarray, grid: Grid, index: int, color, thickness: int = 2) -> None:
    """Draw a border around tile ``index``."""
    top, left, height, width = grid.cell(index)
    cv2.rectangle(pane, (left - 1, top - 1), (left + width, top + height), color, thickness)


# -- values to pixels ------------------------------------------------------------------------
def boost(maps: np.ndarray, indiv: float = 0.0, gamma: float = 1.0) -> np.ndarray:
    """C x H x W -> [0, 1]: each channel scaled by (its max)^-indiv, min-max over the layer, ^gamma."""
    maps = np.asarray(maps, np.float32)
    if indiv:
        peaks = np.abs(maps).reshape(len(maps), -1).max(axis=1)
        maps = maps / np.maximum(peaks, 1e-12)[:, None, None] ** indiv
    low, high = float(maps.min()), float(maps.max())
    scaled = (maps - low) / (high - low) if high > low else np.zeros_like(maps)
    return scaled ** gamma if gamma != 1 else scaled


def signed_colors(maps: np.ndarray, percentile: float = PERCENTILE) -> np.ndarray:
    """C x H x W diffs -> C x H x W x 3 uint8: negative red, positive green, zero black, all maps on
    one robust scale (``app.views.scaling``: the ``percentile`` of the nonzero |values| is full)."""
    scaled = signed_unit(maps, percentile)
    colors = np.zeros(maps.shape + (3,), np.uint8)
    colors[..., 1] = (np.maximum(scaled, 0) * 255).astype(np.uint8)
    colors[..., 2] = (np.maximum(-scaled, 0) * 255).astype(np.uint8)
    return colors


def colorize(values01: np.ndarray, colormap: str = "gray") -> np.ndarray:
    """[0, 1] values (any shape) -> same shape x 3 uint8 in ``colormap`` (gray or an OpenCV colormap)."""
    gray = (np.clip(values01, 0, 1) * 255).astype(np.uint8)
    if colormap == "gray":
        return cv2.cvtColor(gray.reshape(-1, gray.shape[-1] if gray.ndim else 1),
                            cv2.COLOR_GRAY2BGR).reshape(gray.shape + (3,))
    flat = cv2.applyColorMap(gray.reshape(-1, 1), COLORMAP_CODES[colormap])
    return flat.reshape(gray.shape + (3,))


# -- backprop views and overlays -------------------------------------------------------------
def backprop_map(diff: np.ndarray, view: str, blur_sigma: float = 4.0, percentile: float = PERCENTILE) -> np.ndarray:
    """An H x W x 3 input diff as a [0, 1] map: H x W x 3 for "raw", H x W for the single-channel views.

    Every view is scaled robustly (``app.views.scaling``): the ``percentile`` of the nonzero |values|
    is full scale, the rest saturates. raw: zero at mid-gray; gray: the channel mean, likewise; norm:
    L2 over channels, zero black; normblur: the norm blurred (Gaussian, sigma ``blur_sigma``), zero
    black; sum>0: the positive part of the channel sum, zero black.
    """
    if view in ("raw", "gray"):
        return signed_gray(diff if view == "raw" else diff.mean(axis=2), percentile)
    if view in ("norm", "normblur"):
        norm = np.linalg.norm(diff, axis=2).astype(np.float32)
        if view == "normblur" and blur_sigma > 0:
            norm = cv2.GaussianBlur(norm, (0, 0), blur_sigma)
        return magnitude_unit(norm, percentile)
    if view == "sum>0":
        return magnitude_unit(np.maximum(diff.sum(axis=2), 0), percentile)
    raise ValueError(f"no map for backprop view {view!r}")


def histogram(values: np.ndarray, height: int, width: int, bins: int = 64, scale: float = 0.45) -> np.ndarray:
    """A bar chart of ``values`` (log counts), with the value range written below."""
    image = np.full((height, width, 3), 30, np.uint8)
    values = np.asarray(values, np.float64).ravel()
    finite = np.isfinite(values)
    if not finite.all():   # counted in the title; no range fits them
        values = values[finite] if finite.any() else np.zeros(1)
    low, high = float(values.min()), float(values.max())
    counts, _ = np.histogram(values, bins=bins, range=(low, high if high > low else low + 1))
    heights = np.log1p(counts) / max(np.log1p(counts).max(), 1e-12)
    chart_h, bar_w = height - 2 * line_height(scale), width / bins
    for index, level in enumerate(heights):
        top = int(chart_h * (1 - level)) + 4
        cv2.rectangle(image, (int(index * bar_w), top), (int((index + 1) * bar_w) - 1, int(chart_h) + 4),
                      (200, 170, 90), -1)
    text(image, f"{low:.3g}", (4, height - 8), scale)
    right = f"{high:.3g}"
    text(image, right, (width - text_width(right, scale) - 4, height - 8), scale)
    title = "log count" + (f" ({finite.size - int(finite.sum())} NaN / Inf left out)" if not finite.all() else "")
    text(image, title, (4, line_height(scale)), scale)
    return image


def overlay(image: np.ndarray, mask01: np.ndarray, mode: str) -> np.ndarray:
    """The input shown through a [0, 1] mask (weights mask^0.8): "over active" keeps where the mask
    is high, "over inactive" where it is low; "off" returns the image."""
    if mode == "off":
        return image
    weights = mask01 if mode == "over active" else 1 - mask01
    weights = cv2.resize(np.clip(weights, 0, 1).astype(np.float32), (image.shape[1], image.shape[0]))
    return (image * (weights ** 0.8)[:, :, None]).astype(np.uint8)
