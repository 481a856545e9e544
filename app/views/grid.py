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


def caption(title, width: int, height: int = 20) -> np.ndarray:
    """A ``height`` x ``width`` strip with ``title`` (its first 40 characters) written on it."""
    strip = np.empty((height, width, 3), np.uint8)
    strip[:] = BACKGROUND
    cv2.putText(strip, str(title)[:40], (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, TEXT_COLOR, 1, cv2.LINE_AA)
    return strip


def captioned_panels(images, titles, height: int = 300, width: int = 300, title_height: int = 20) -> np.ndarray:
    """Panels of equal size in one row, each scaled to fit and captioned above."""
    if len(images) != len(titles):
        raise ValueError("captioned_panels needs one title per image")
    return joined([np.vstack([caption(title, width, title_height), fit(image, height, width)])
                   for image, title in zip(images, titles)])


def joined(pictures, gap: int = 2, color=(0, 0, 0)) -> np.ndarray:
    """Pictures of one height (... x H x W_i x 3 uint8) in one row, a ``gap`` pixels wide line of
    ``color`` between each two."""
    line = np.empty(pictures[0].shape[:-2] + (gap, 3), np.uint8)
    line[:] = color
    pieces = [pictures[0]]
    for picture in pictures[1:]:
        pieces += [line, picture]
    return np.concatenate(pieces, axis=-2)
