"""Laying small images out as one picture: a tile grid and labelled side-by-side panels."""
import math

import cv2
import numpy as np

BACKGROUND = (40, 40, 40)
TEXT_COLOR = (230, 230, 230)


def grid_shape(count: int, aspect: float = 1.0) -> tuple:
    """(rows, columns) of the original toolbox's tiling: columns = ceil(sqrt(n * aspect))."""
    columns = max(1, math.ceil(math.sqrt(count * aspect)))
    return max(1, math.ceil(count / columns)), columns


def tile_grid(tiles, upscale: int = 1, pad: int = 1, columns: int = None) -> np.ndarray:
    """Equal-sized H x W x 3 uint8 tiles -> one image, row-major, ``pad`` pixels apart.

    ``upscale`` enlarges each tile by pixel repetition (filters are often 3 x 3 or 7 x 7).
    """
    tiles = np.asarray(tiles)
    if tiles.ndim != 4 or tiles.shape[3] != 3 or len(tiles) == 0:
        raise ValueError(f"tile_grid wants N x H x W x 3 tiles, got shape {tiles.shape}")
    if upscale > 1:
        tiles = tiles.repeat(upscale, axis=1).repeat(upscale, axis=2)
    count, height, width = tiles.shape[:3]
    columns = columns or grid_shape(count)[1]
    rows = math.ceil(count / columns)
    canvas = np.empty((rows * (height + pad) + pad, columns * (width + pad) + pad, 3), np.uint8)
    canvas[:] = BACKGROUND
    for index, tile in enumerate(tiles):
        top = pad + (index // columns) * (height + pad)
        left = pad + (index % columns) * (width + pad)
        canvas[top:top + height, left:left + width] = tile
    return canvas


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``image`` to fit height x width keeping its aspect (nearest: tiles stay crisp), centred."""
    scale = min(height / image.shape[0], width / image.shape[1])
    size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    return canvas


def side_by_side(images, titles, height: int = 300, width: int = 300, title_height: int = 20) -> np.ndarray:
    """Panels of equal size in one row, each scaled to fit and captioned above."""
    if len(images) != len(titles):
        raise ValueError("side_by_side needs one title per image")
    panels = []
    for image, title in zip(images, titles):
        caption = np.empty((title_height, width, 3), np.uint8)
        caption[:] = BACKGROUND
        cv2.putText(caption, str(title)[:40], (4, title_height - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, TEXT_COLOR, 1, cv2.LINE_AA)
        panels.append(np.vstack([caption, fit(image, height, width)]))
    separator = np.full((height + title_height, 2, 3), 0, np.uint8)
    pieces = [panels[0]]
    for panel in panels[1:]:
        pieces += [separator, panel]
    return np.hstack(pieces)
