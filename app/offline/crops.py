"""Receptive-field crops of each unit's top images, and backward passes from the unit cropped alike.

For every (image, y, x) that find_maxes kept for a unit: the part of the image (as the net saw it,
after resizing) that the unit at (y, x) sees, zero-padded where the field runs off the image, and
the deconv / guided / vanilla backprop from a one-hot at (unit, y, x), cropped the same way and drawn
as the raw view (zero = mid-gray, scaled robustly by a high percentile of the crop's nonzero |values|,
``app.views.scaling``). A crop whose backward pass is all zero is drawn as a marked tile (a red cross
on mid-gray) and listed in the unit's info.json, so it does not pass for a flat picture.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from app.errors import DeepVisError
from app.net.preprocess import read_image
from app.offline.montage import unit_montage, write_sprite
from app.offline.progress import progress_bar, write_json_atomic, write_png_atomic
from app.unit_images import crop_path, montage_path, unit_dir
from app.views.scaling import PERCENTILE, signed_gray

BACKWARD_MODES = {"deconv": "deconv", "guided": "guided", "backprop": "grad"}  # kind -> net.backward mode
KINDS = ("maxim",) + tuple(BACKWARD_MODES)


@dataclass
class Entry:
    """One of a unit's top activations: which image, where, how high."""

    unit: int
    rank: int
    value: float
    image: int
    y: object  # None for a vector layer
    x: object


def unit_entries(maxes: dict, layer: str, unit: int) -> list:
    return [Entry(unit, rank, float(item["value"]), int(item["image"]), item.get("y"), item.get("x"))
            for rank, item in enumerate(maxes["layers"][layer][unit])]


def box_of(entry: Entry, field, input_size: tuple) -> tuple:
    """(y0, y1, x0, x1) in input pixels (end exclusive; may run past the image): the receptive field
    of a map position, the whole input for a vector unit."""
    if entry.y is None:
        return (0, input_size[0], 0, input_size[1])
    return tuple(int(v) for v in field.box(int(entry.y), int(entry.x)))


def crop(image: np.ndarray, box: tuple) -> np.ndarray:
    """image[y0:y1, x0:x1] of an H x W (x C) array, zeros where the box leaves the image."""
    y0, y1, x0, x1 = box
    out = np.zeros((y1 - y0, x1 - x0) + image.shape[2:], image.dtype)
    height, width = image.shape[:2]
    top, left, bottom, right = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
    if top < bottom and left < right:
        out[top - y0:bottom - y0, left - x0:right - x0] = image[top:bottom, left:right]
    return out


def image_layout(diff: np.ndarray, spec) -> np.ndarray:
    """A C x H x W input diff as an H x W x 3 BGR float array laid out like the deprocessed image."""
    if spec.transpose:
        diff = diff.transpose(0, 2, 1)
    pixels = diff.transpose(1, 2, 0)
    if spec.channels == 1:
        return np.repeat(pixels, 3, axis=2)
    bgr = np.empty_like(pixels)
    bgr[:, :, list(spec.channel_swap)] = pixels
    return bgr


ZERO_MARK = (0, 0, 200)   # BGR: the cross drawn over an all-zero crop


def render_raw(diff: np.ndarray, percentile: float = PERCENTILE) -> np.ndarray:
    """An H x W x 3 diff as uint8: zero = mid-gray, +-the ``percentile`` of the nonzero |diff| (and
    beyond) = white / black; all zero: ``all_zero_tile``."""
    if not np.any(diff):
        return all_zero_tile(diff.shape[:2])
    return (signed_gray(diff, percentile) * 255 + 0.5).astype(np.uint8)


def all_zero_tile(size: tuple) -> np.ndarray:
    """The picture of an all-zero backward crop: mid-gray crossed corner to corner in red."""
    height, width = size
    tile = np.full((height, width, 3), 128, np.uint8)
    thickness = max(1, min(height, width) // 16)
    cv2.line(tile, (0, 0), (width - 1, height - 1), ZERO_MARK, thickness)
    cv2.line(tile, (0, height - 1), (width - 1, 0), ZERO_MARK, thickness)
    return tile


def is_all_zero_tile(image: np.ndarray) -> bool:
    return image.ndim == 3 and np.array_equal(image, all_zero_tile(image.shape[:2]))


def _image_box(box: tuple, spec) -> tuple:
    """A box in the input tensor's rows / columns, in the deprocessed image's instead."""
    return (box[2], box[3], box[0], box[1]) if spec.transpose else box


def backward_diffs(net, layer: str, entries: list, mode: str) -> np.ndarray:
    """After ``net.forward`` of one input per entry: the input diffs of a one-hot at each entry's own
    (unit, y, x), all in one backward pass."""
    value = net.tensors[layer]
    seed = np.zeros_like(value)
    for row, entry in enumerate(entries):
        position = () if entry.y is None else (int(entry.y), int(entry.x))
        seed[(row, entry.unit) + position] = 1.0
    return net.backward(layer, 0, mode=mode, seed=seed)


def crop_entries(net, maxes: dict, layer: str, entries: list, kinds, field) -> dict:
    """{kind: [crop per entry]} for entries of one or more units, run through the net together."""
    spec, size = net.spec.input, net.input_shape[1:]
    inputs = net.preprocess([read_image(maxes["images"][entry.image]) for entry in entries])
    net.forward(inputs)
    boxes = [_image_box(box_of(entry, field, size), spec) for entry in entries]
    crops = {}
    if "maxim" in kinds:
        crops["maxim"] = [crop(image, box) for image, box in zip(net.deprocess(inputs), boxes)]
    for kind in kinds:
        if kind in BACKWARD_MODES:
            diffs = backward_diffs(net, layer, entries, BACKWARD_MODES[kind])
            crops[kind] = [render_raw(crop(image_layout(diff, spec), box)) for diff, box in zip(diffs, boxes)]
    return crops


def done_units(root, layer: str, units) -> set:
    """Units whose info.json exists (written last, atomically: the unit is complete)."""
    return {unit for unit in units if (unit_dir(root, layer, unit) / "info.json").is_file()}


def unit_groups(maxes: dict, layer: str, units, batch: int):
    """Whole units as (unit, entries), in order, as many at a time as keeps each group within ``batch`` entries."""
    group = []
    for unit in units:
        entries = unit_entries(maxes, layer, unit)
        if group and sum(len(e) for _, e in group) + len(entries) > batch:
            yield group
            group = []
        group.append((unit, entries))
    if group:
        yield group


def crop_layer(net, maxes: dict, layer: str, root, field, kinds=KINDS, units=None, batch: int = 16,
               sprite_tile: int = 96, progress: bool = True) -> list:
    """Crops, montages and info.json of every unit of ``layer`` in ``maxes`` not yet done under
    ``root``, then the layer's sprites. field: the layer's receptive field (``.box(y, x)``), unused
    for vector layers. Returns the units run now."""
    if layer not in maxes["layers"]:
        raise DeepVisError(f"{maxes.get('model')}: layer {layer}: not in maxes.json (run find_maxes on it)")
    if field is None and net.layer(layer).kind == "map":
        raise DeepVisError(f"{net.spec.name}: layer {layer}: no receptive field known for it")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise DeepVisError(f"{layer}: unknown mode(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    units = range(len(maxes["layers"][layer])) if units is None else units
    done = done_units(root, layer, units)
    todo = [unit for unit in units if unit not in done]
    with progress_bar(len(todo), f"{layer} crops", unit="unit", enabled=progress) as bar:
        for group in unit_groups(maxes, layer, todo, batch):
            entries = [entry for _, listed in group for entry in listed]
            crops = crop_entries(net, maxes, layer, entries, kinds, field) if entries else {}
            start = 0
            for unit, listed in group:
                end = start + len(listed)
                _write_unit(net, maxes, layer, root, unit, listed,
                            {kind: images[start:end] for kind, images in crops.items()}, field)
                start = end
                bar.update(1)
    for kind in kinds:
        write_sprite(root, layer, kind, len(maxes["layers"][layer]), sprite_tile)
    return todo


def _write_unit(net, maxes, layer, root, unit, entries, crops, field) -> None:
    for kind, images in crops.items():
        for entry, image in zip(entries, images):
            write_png_atomic(crop_path(root, layer, unit, kind, entry.rank), image)
        if images:
            write_png_atomic(montage_path(root, layer, unit, kind), unit_montage(images))
    size = net.input_shape[1:]
    all_zero = {kind: [entry.rank for entry, image in zip(entries, images) if is_all_zero_tile(image)]
                for kind, images in crops.items() if kind in BACKWARD_MODES}
    record = {"model": maxes.get("model"), "layer": layer, "unit": unit,
              "kinds": [kind for kind in KINDS if kind in crops],
              "all_zero": {kind: ranks for kind, ranks in all_zero.items() if ranks},
              "entries": [{"rank": e.rank, "value": e.value, "image": maxes["images"][e.image],
                           "image_index": e.image, "y": e.y, "x": e.x, "box": list(box_of(e, field, size))}
                          for e in entries]}
    write_json_atomic(unit_dir(root, layer, unit) / "info.json", record, indent=1)
