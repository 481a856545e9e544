"""Grids of images: a unit's 3 x 3 montage of its top images and a whole layer's sprite.

Files are written whole or not at all (app/offline/progress.py), so a killed run never leaves a half
image that a resumed run would count as done.
"""
import math
from pathlib import Path

import cv2
import numpy as np

from app.errors import DeepVisError
from app.files import write_image_atomic
from app.net.preprocess import read_image
from app.unit_images import montage_path, sprite_path

PAD = 2  # pixels of background between tiles


def grid(images: list, columns: int = None, tile: tuple = None, cells: int = None) -> np.ndarray:
    """Images (H x W x 3 uint8, None = empty cell) in rows of ``columns``, each resized to ``tile``
    (height, width; default: the first image's size), PAD pixels of black between them.
    cells: how many cells to lay out (default: one per image)."""
    cells = len(images) if cells is None else cells
    present = [image for image in images if image is not None]
    if not present and tile is None:
        raise DeepVisError("montage: no images to lay out")
    height, width = tile or present[0].shape[:2]
    columns = columns or max(1, math.ceil(math.sqrt(cells)))
    rows = max(1, math.ceil(cells / columns))
    canvas = np.zeros((rows * (height + PAD) - PAD, columns * (width + PAD) - PAD, 3), np.uint8)
    for index, image in enumerate(images[:cells]):
        if image is None:
            continue
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        top, left = (index // columns) * (height + PAD), (index % columns) * (width + PAD)
        canvas[top:top + height, left:left + width] = image
    return canvas


def unit_montage(crops: list, cells: int = 9) -> np.ndarray:
    """A unit's top-k crops as a square montage (3 x 3 for the usual nine; empty cells stay black)."""
    return grid(list(crops), cells=max(cells, len(crops)))


def write_sprite(root, layer: str, kind: str, units: int, tile: int) -> Path:
    """Every unit's image of ``kind`` (its montage, or opt.png) in one grid, unit u at cell u in rows of
    ceil(sqrt(units)); units without an image yet are black cells. tile: cell side in pixels."""
    images = []
    for unit in range(units):
        try:   # shrunk as read: a thousand full-size montages would not fit in memory
            images.append(cv2.resize(read_image(montage_path(root, layer, unit, kind)), (tile, tile),
                                     interpolation=cv2.INTER_AREA))
        except DeepVisError:   # not made yet: a black cell
            images.append(None)
    return write_image_atomic(sprite_path(root, layer, kind), grid(images, tile=(tile, tile), cells=units))
