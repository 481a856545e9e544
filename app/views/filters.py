"""Filter weights as pictures: colour first-layer filters, per-input-channel tiles of deeper
filters, per-unit weight histograms and a layer's weight correlation matrix.

Arrays in (weights O x C x kh x kw from ``app.views.weights``), H x W x 3 uint8 BGR images out.
"""
import cv2
import numpy as np

from app.net.preprocess import image_layout
from app.views.grid import BACKGROUND, TEXT_COLOR, tile_grid


def normalise(values: np.ndarray, signed: bool = False) -> np.ndarray:
    """Values -> [0, 1]: min-max, or with ``signed`` zero at 0.5 and +-max|v| at 1 / 0.

    A constant array maps to 0.5 (nothing to show).
    """
    values = np.asarray(values, dtype=np.float64)
    if signed:
        peak = np.abs(values).max(initial=0.0)
        return np.full(values.shape, 0.5) if peak == 0 else 0.5 + values / (2 * peak)
    low, high = values.min(initial=np.inf), values.max(initial=-np.inf)
    return np.full(values.shape, 0.5) if not high > low else (values - low) / (high - low)


def to_uint8(unit_values: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 by rounding."""
    return (np.clip(unit_values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def draws_in_colour(weights: np.ndarray) -> bool:
    """True when each filter reads 1 or 3 channels (an image): one colour tile per filter."""
    return weights.ndim == 4 and weights.shape[1] in (1, 3)


def filter_images(weights: np.ndarray, channel_swap=(2, 1, 0), scope: str = "filter",
                  signed: bool = False, transpose: bool = False) -> np.ndarray:
    """First-layer filters O x C x kh x kw (C = 3 or 1) -> O x kh x kw x 3 BGR uint8 tiles.

    channel_swap is the model's: net channel c was read from the image's BGR channel
    channel_swap[c], so it is written back there and colours show as the net saw them. scope:
    "filter" normalises each filter alone (all its channels together), "layer" all filters at
    once. transpose: the model takes W x H images (MTCNN), so filters are flipped back.
    """
    if not draws_in_colour(weights):
        raise ValueError(f"colour filters read 1 or 3 channels; weights have shape {np.shape(weights)}")
    weights = np.asarray(weights, dtype=np.float64)
    scaled = (normalise(weights, signed) if scope == "layer"
              else np.stack([normalise(w, signed) for w in weights]))
    return to_uint8(image_layout(scaled, channel_swap, transpose))


def input_channel_tiles(filter_weights: np.ndarray, signed: bool = False, transpose: bool = False) -> np.ndarray:
    """One deeper filter C x kh x kw -> C gray tiles C x kh x kw x 3 (BGR uint8), one per input channel,
    normalised together so the channels compare."""
    scaled = normalise(filter_weights, signed)
    if transpose:
        scaled = scaled.swapaxes(1, 2)
    return np.repeat(to_uint8(scaled)[..., None], 3, axis=3)


def unit_filter_tiles(weights: np.ndarray, channel_swap=(2, 1, 0), transpose: bool = False) -> np.ndarray:
    """One equal-sized tile per unit, tile k = unit k (so a layers pane can tile them and clicks
    select units): the colour filter when it reads the image, else a small grid of its
    per-input-channel tiles."""
    if draws_in_colour(weights):
        return filter_images(weights, channel_swap, transpose=transpose)
    return np.stack([tile_grid(input_channel_tiles(unit, transpose=transpose)) for unit in weights])


# -- weight histograms -------------------------------------------------------------------------
def weight_histograms(weights: np.ndarray, bins: int = 32) -> tuple:
    """Per unit, a histogram of its weights over edges shared by the whole layer.

    Returns (counts O x bins, edges bins + 1).
    """
    flat = np.asarray(weights, dtype=np.float64).reshape(len(weights), -1)
    low, high = flat.min(), flat.max()
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    counts = np.stack([np.histogram(row, edges)[0] for row in flat])
    return counts, edges


def histogram_image(counts: np.ndarray, edges: np.ndarray, height: int = 64, width: int = 96,
                    color=(80, 200, 255)) -> np.ndarray:
    """One histogram as bars scaled to its tallest bin; a gray line marks weight 0."""
    image = np.zeros((height, width, 3), np.uint8)  # black: tiles stand out on the grid's gray
    if edges[0] < 0 < edges[-1]:
        zero = int(round((0 - edges[0]) / (edges[-1] - edges[0]) * (width - 1)))
        image[:, zero] = (110, 110, 110)
    peak = max(int(np.max(counts)), 1)
    bounds = np.linspace(0, width, len(counts) + 1).astype(int)
    for count, left, right in zip(counts, bounds[:-1], bounds[1:]):
        bar = int(round(count / peak * height))
        if bar:
            image[height - bar:, left:max(left + 1, right - 1)] = color
    return image


def histogram_tiles(counts: np.ndarray, edges: np.ndarray, height: int = 64, width: int = 96) -> np.ndarray:
    """Every unit's histogram (``counts`` O x bins over ``edges`` shared, bins + 1, or per unit,
    O x (bins + 1)) as O x height x width x 3 tiles (the layers pane tiles them)."""
    edges = np.broadcast_to(edges, (len(counts), np.shape(edges)[-1]))
    return np.stack([histogram_image(row, row_edges, height, width) for row, row_edges in zip(counts, edges)])


# -- weight correlation ------------------------------------------------------------------------
def weight_correlation(weights: np.ndarray) -> np.ndarray:
    """O x O correlation of the units' flattened weights; a constant unit correlates 0 with all."""
    flat = np.asarray(weights, dtype=np.float64).reshape(len(weights), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.corrcoef(flat) if len(flat) > 1 else np.ones((1, 1))
    return np.nan_to_num(np.atleast_2d(matrix), nan=0.0)


def diverging_colors(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] -> BGR uint8: blue at -1, white at 0, red at +1."""
    values = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    fade = 1.0 - np.abs(values)
    blue = np.where(values < 0, 1.0, fade)
    red = np.where(values > 0, 1.0, fade)
    return to_uint8(np.stack([blue, fade, red], axis=-1))


def correlation_image(matrix: np.ndarray, size: int = 300, order=None, colorbar: bool = True) -> np.ndarray:
    """A correlation matrix drawn from -1 (blue) to 1 (red), rows and columns in ``order``
    (a permutation from ``app.views.ordering``; None keeps unit order), with a colour bar."""
    matrix = np.asarray(matrix)
    if order is not None:
        matrix = matrix[np.ix_(order, order)]
    image = cv2.resize(diverging_colors(matrix), (size, size), interpolation=cv2.INTER_NEAREST)
    if not colorbar:
        return image
    bar = np.empty((size, 48, 3), np.uint8)
    bar[:] = BACKGROUND
    bar[:, 4:16] = diverging_colors(np.linspace(1, -1, size))[:, None, :]
    for text, row in (("1", 10), ("0", size // 2 + 4), ("-1", size - 6)):
        cv2.putText(bar, text, (19, row), cv2.FONT_HERSHEY_SIMPLEX, 0.35, TEXT_COLOR, 1, cv2.LINE_AA)
    return np.hstack([image, bar])
