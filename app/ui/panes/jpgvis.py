"""The jpgvis pane: the selected unit's precomputed images stacked (regularized optimization, max
images, deconv of the max images), read from the folder layout of app/unit_images.py (either the
offline tools' own or the original toolbox's). Loading happens in the app's loader thread; this
pane only asks ``view.unit_image(path)``, which is None until the file is loaded."""
import math

import numpy as np

from app import unit_images
from app.ui import draw as paint
from app.views.registry import Comparison, Histograms



def source_layer(view, layer: str = None):
    """The layer whose images stand for ``layer`` (settings.jpgvis_remap; else, for a conv without
    images of its own, those of the ReLU reading it: find_maxes scores only the ReLU, and ranks the
    same top images for both), or None when not shown."""
    layer = layer or view.layer_name
    allowed = view.settings.jpgvis_layers
    if allowed is not None and layer not in allowed:
        return None
    if layer in view.settings.jpgvis_remap:
        return view.settings.jpgvis_remap[layer]
    activation, root = view.net.activations.get(layer), view.settings.unit_jpg_dir
    if activation is not None and root is not None and not unit_images.has_images(root, layer):
        return activation
    return layer


def unit_picture(view, unit: int, kind: str, first_only: bool = False):
    """The image of ``kind`` for ``unit`` of the selected layer, or None (missing or not loaded yet)."""
    root, layer = view.settings.unit_jpg_dir, source_layer(view)
    if root is None or layer is None:
        return None
    path = None
    if first_only and kind != "opt":
        crop = unit_images.crop_path(root, layer, unit, kind, 0)
        path = crop if crop.is_file() else None
    path = path or unit_images.find_unit_image(root, layer, unit, kind)
    return None if path is None else view.unit_image(path)


SPRITE_PAD = 2   # pixels between the cells of a layer's sprite (app/offline/montage.py)


def layer_pictures(view, kind: str, units: int):
    """units x h x w x 3 images of every unit of the selected layer, from the layer's sprite when there
    is one, else from each unit's own file (missing units black); None when there is none at all."""
    root, layer = view.settings.unit_jpg_dir, source_layer(view)
    if root is None or layer is None:
        return None
    sprite_file = unit_images.sprite_path(root, layer, kind)
    sprite = view.unit_image(sprite_file) if sprite_file.is_file() else None
    if sprite is not None:
        return sprite_cells(sprite, units)
    pictures = [unit_picture(view, unit, kind, first_only=True) for unit in range(units)]
    if all(picture is None for picture in pictures):
        return None
    size = next(p for p in pictures if p is not None).shape[:2]
    blank = np.zeros(size + (3,), np.uint8)
    return np.stack([blank if p is None else paint.fit_into(p, *size) for p in pictures])


def sprite_cells(sprite: np.ndarray, units: int) -> np.ndarray:
    """Cut a sprite (unit u at cell u, rows of ceil(sqrt(units)) square cells) into its units' images."""
    columns = max(1, math.ceil(math.sqrt(units)))
    side = (sprite.shape[1] + SPRITE_PAD) // columns - SPRITE_PAD
    cells = np.zeros((units, side, side, 3), np.uint8)
    for unit in range(units):
        top, left = (unit // columns) * (side + SPRITE_PAD), (unit % columns) * (side + SPRITE_PAD)
        cell = sprite[top:top + side, left:left + side]
        cells[unit, :cell.shape[0], :cell.shape[1]] = cell
    return cells


def where_to_find(view) -> list:
    root = view.settings.unit_jpg_dir
    return [f"looked in {root}" if root else "settings.unit_jpg_dir is not set",
            "make them with the offline tools (max images, crops, optimize)",
            "or press 2 to optimize this unit now"]


def comparison(view, shown: Comparison, height: int, width: int) -> np.ndarray:
    """The weight gradients of the compared units stacked, each titled (pattern "weight grads")."""
    from app.views.grid import tile_grid

    sets = shown.rows
    slot = height // len(sets)
    pane = np.full((height, width, 3), 30, np.uint8)
    band = paint.line_height(view.font) + 6
    for row, (title, tiles) in enumerate(sets):
        top = row * slot
        pane[top + band:top + slot] = paint.fit_into(tile_grid(tiles), slot - band, width, nearest=True, fill=30)
        paint.text(pane, f"d {title} / d weights", (6, top + band - 4), view.font, view.color("title"))
    return pane


def unit_statistics(view, shown: Histograms, height: int, width: int) -> np.ndarray:
    """The selected unit's histogram of spatial maxima over the dataset above the layer's units
    counted by percent dead (pattern "activation histogram")."""
    from app.views.filters import histogram_image

    stats, unit = shown.stats, view.state.unit
    edges = stats["edges"][unit]
    panels = ((f"unit {unit}: {stats['percent_dead'][unit]:.0f}% dead ({int(stats['images'])} images)",
               stats["counts"][unit], edges, (f"{edges[0]:.3g}", f"{edges[-1]:.3g}")),
              ("layer: units by % dead", stats["inactivity_counts"], stats["inactivity_edges"], ("0%", "100%")))
    slot, band = height // len(panels), paint.line_height(view.font) + 6
    pane = np.full((height, width, 3), 30, np.uint8)
    for row, (title, counts, bins, (low, high)) in enumerate(panels):
        top = row * slot
        pane[top + band:top + slot - band, 6:width - 6] = histogram_image(counts, bins, slot - 2 * band, width - 12)
        paint.text(pane, title, (6, top + band - 4), view.font, view.color("title"), max_width=width - 12)
        paint.text(pane, low, (6, top + slot - 4), view.font * 0.8)
        paint.text(pane, high, (width - 6 - paint.text_width(high, view.font * 0.8), top + slot - 4), view.font * 0.8)
    return pane


DETAILS = {Comparison: comparison, Histograms: unit_statistics}   # what a pattern's result shows here


def draw(view, height: int, width: int) -> np.ndarray:
    detail = getattr(view.pattern_result, "detail", None)
    if detail is not None:
        return DETAILS[type(detail)](view, detail, height, width)
    if not view.state.show_unit_jpgs:
        return paint.message(height, width, ["per-unit images hidden (9 shows them)"], view.font)
    source = source_layer(view)
    if source is None:
        return paint.message(height, width, [f"no per-unit images for {view.layer_name} (jpgvis_layers)"],
                             view.font)
    slot = height // len(unit_images.SHOWN)
    pane = np.full((height, width, 3), 30, np.uint8)
    found = 0
    for row, kind in enumerate(unit_images.SHOWN):
        image = unit_picture(view, view.state.unit, kind, view.state.first_image_only)
        progress = view.optimizing if kind == "opt" else None
        if progress is not None and (progress.running or image is None):   # the file once written and loaded
            image = progress.picture
        top = row * slot
        band = 0 if progress is None else paint.line_height(view.font) + 4   # the progress line, under the image
        if image is not None:
            pane[top:top + slot - band] = paint.fit_into(image, slot - band, width, fill=30)
        found += image is not None or progress is not None
        title = unit_images.KINDS[kind] if source == view.layer_name else f"{unit_images.KINDS[kind]} (from {source})"
        paint.text(pane, title, (6, top + paint.line_height(view.font)), view.font, view.color("title"))
        if progress is not None:
            paint.text(pane, progress.line, (6, top + slot - 6), view.font, view.color("text"), max_width=width - 12)
    if not found:
        return paint.message(height, width, [f"no per-unit images for {view.layer_name}:{view.state.unit}"]
                             + where_to_find(view), view.font)
    return pane
