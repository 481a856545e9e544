"""Receptive-field crops of each unit's top images, and backward passes from the unit cropped alike.

For every (image, y, x) that find_maxes kept for a unit: the part of the image (as the net saw it,
after resizing) that the unit at (y, x) sees, zero-padded where the field runs off the image, and
the deconv / guided / vanilla backprop from a one-hot at (unit, y, x), cropped the same way and drawn
as the raw view (zero = mid-gray, scaled robustly by a high percentile of the crop's nonzero |values|,
``app.views.scaling``). A crop whose backward pass is all zero is drawn as a marked tile (a red cross
on mid-gray) and listed in the unit's info.json, so it does not pass for a flat picture.

A field larger than the image (deep layers) would be mostly padding: there the part of the image
inside the field is scaled to fill an image-sized tile and a ring marks the field's centre, the
same placement for the max crop and the backward crops of an entry.

Speed: entries whose fields do not overlap share a net input row (Packing), since a unit sees only
its field and the backward pass from it reaches only that field. With a Ray pool (app.offline.on_ray)
the groups of units are cropped by its actors and written here, the same files.
"""
import copy
import sys
import time
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from app import unit_images
from app.errors import DeepVisError
from app.files import write_image_atomic, write_json_atomic
from app.net import onnx_graph, ops
from app.net.preprocess import image_layout
from app.offline import image_sources
from app.offline.montage import unit_montage, write_sprite
from app.offline.progress import done_units, estimate_line, progress_bar
from app.unit_images import crop_path, montage_path, unit_dir
from app.views.scaling import PERCENTILE, signed_gray

BACKWARD_MODES = {"deconv": "deconv", "guided": "guided", "backprop": "grad"}  # kind -> Run.backward mode
KINDS = tuple(kind for kind in unit_images.KINDS if kind != "opt")   # opt: tools.optimize_image
INPUT_CACHE = 256  # preprocessed images kept while cropping a layer: top images recur across units
ENTRIES_PER_ROW = 8  # at most this many entries per net input row in a group: their images are held


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


@dataclass(frozen=True)
class Placement:
    """How a field larger than the image is shown: ``source`` (y0, y1, x0, x1), the part of the image
    inside the field, scaled by ``scale`` into ``target`` (y0, y1, x0, x1) of a ``tile`` (height,
    width) of black, the field's centre at ``centre`` (y, x) of the tile."""

    source: tuple
    target: tuple
    tile: tuple
    scale: float
    centre: tuple


def placement(box: tuple, size: tuple):
    """Where ``box`` (y0, y1, x0, x1; may run past the image) is shown from an image of ``size``
    (height, width): None when it fits (cropped as it is, zeros outside the image), else its part
    inside the image, scaled by one factor as far as a tile of at most the image's size allows; spare
    rows or columns are black on the side where the field runs off the image."""
    y0, y1, x0, x1 = box
    height, width = size
    if y1 - y0 <= height and x1 - x0 <= width:
        return None
    source = (max(y0, 0), min(y1, height), max(x0, 0), min(x1, width))
    tile = (min(y1 - y0, height), min(x1 - x0, width))
    rows, columns = source[1] - source[0], source[3] - source[2]
    scale = min(tile[0] / rows, tile[1] / columns)
    shown = (min(tile[0], round(rows * scale)), min(tile[1], round(columns * scale)))
    top = _band(tile[0] - shown[0], y0 < 0, y1 > height)
    left = _band(tile[1] - shown[1], x0 < 0, x1 > width)
    centre = (top + ((y0 + y1 - 1) / 2 - source[0] + 0.5) * scale - 0.5,
              left + ((x0 + x1 - 1) / 2 - source[2] + 0.5) * scale - 0.5)
    return Placement(source, (top, top + shown[0], left, left + shown[1]), tile, scale, centre)


def _band(spare: int, runs_off_start: bool, runs_off_end: bool) -> int:
    """Offset of the shown part along one axis: the spare pixels go where the field leaves the image."""
    if runs_off_start and not runs_off_end:
        return spare
    if runs_off_end and not runs_off_start:
        return 0
    return spare // 2


def shown(image: np.ndarray, box: tuple, place) -> np.ndarray:
    """The crop of ``image`` (H x W x C, uint8 or float) for ``box``: as it is when ``place`` is None,
    else the part inside the image scaled into its tile as ``place`` says."""
    if place is None:
        return crop(image, box)
    y0, y1, x0, x1 = place.source
    top, bottom, left, right = place.target
    part = image[y0:y1, x0:x1]
    if part.shape[:2] != (bottom - top, right - left):
        shrink = place.scale < 1
        part = cv2.resize(part, (right - left, bottom - top),
                          interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    out = np.zeros(place.tile + image.shape[2:], image.dtype)
    out[top:bottom, left:right] = part.reshape((bottom - top, right - left) + image.shape[2:])
    return out


def mark_centre(picture: np.ndarray, place) -> np.ndarray:
    """A ring at the field's centre (white inside a dark outline: visible on any picture), when the
    field was scaled; the centre pixels stay visible."""
    if place is None:
        return picture
    radius = max(4, round(min(place.tile) / 40))
    centre = tuple(int(round(v)) for v in place.centre[::-1])  # cv2 takes (x, y)
    cv2.circle(picture, centre, radius, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.circle(picture, centre, radius, (255, 255, 255), 1, cv2.LINE_AA)
    return picture


ZERO_MARK = (0, 0, 200)   # BGR: the cross drawn over an all-zero crop


def render_raw(diff: np.ndarray, percentile: float = PERCENTILE) -> np.ndarray:
    """An H x W x 3 diff as uint8: zero = mid-gray, +-the ``percentile`` of the nonzero |diff| (and
    beyond) = white / black; all zero: ``all_zero_tile``."""
    if not np.any(diff):
        return all_zero_tile(diff.shape[:2])
    return (signed_gray(diff, percentile) * 255 + 0.5).astype(np.uint8)


def backward_picture(diff: np.ndarray, place, percentile: float = PERCENTILE) -> np.ndarray:
    """A backward crop drawn (render_raw) with the field's centre marked when it was scaled; an all-zero
    one is its marked tile alone."""
    picture = render_raw(diff, percentile)
    return mark_centre(picture, place) if np.any(diff) else picture


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


def backward_diffs(run, layer: str, entries: list, mode: str, seeds=None) -> np.ndarray:
    """From the forward ``run``: the input diffs of one backward pass from a one-hot at each entry's
    (unit, y, x) in its own input row, or, given ``seeds``, at (unit,) + seeds[i][1:] in row seeds[i][0]
    (packed_inputs)."""
    value = run[layer]
    seed = np.zeros_like(value)
    for index, entry in enumerate(entries):
        row, position = index, (() if entry.y is None else (int(entry.y), int(entry.x)))
        if seeds is not None:
            row, position = seeds[index][0], seeds[index][1:]
        seed[(row, entry.unit) + position] = 1.0
    # from below the layer's own rectifier, as the app does: a top entry saturated at a ReLU6's 6 still draws
    return run.backward(layer, 0, mode=mode, seed=seed, seed_through_rectifier=True).input


def image_inputs(net, maxes: dict, cached: int = INPUT_CACHE):
    """image index -> the preprocessed net input (C x H x W) of that maxes.json image, the last
    ``cached`` kept."""
    @lru_cache(maxsize=cached)
    def load(index: int) -> np.ndarray:
        return net.preprocess([image_sources.read(maxes["images"][index])])[0]
    return load


def slots(field, map_size: tuple, input_size: tuple) -> list:
    """(y, x, box) of positions of the layer's map whose fields lie inside the input and overlap no
    other's: where a field from inside any image can be moved."""
    rows = _slot_lines(lambda y: field.box(y, 0)[:2], map_size[0], input_size[0])
    columns = _slot_lines(lambda x: field.box(0, x)[2:], map_size[1], input_size[1])
    return [(y, x, field.box(y, x)) for y in rows for x in columns]


def _slot_lines(span, positions: int, length: int) -> list:
    chosen, end = [], 0
    for position in range(positions):
        start, stop = span(position)
        if start >= end and stop <= length:
            chosen.append(position)
            end = stop
    return chosen


def _apart(one: tuple, other: tuple) -> bool:
    return one[1] <= other[0] or other[1] <= one[0] or one[3] <= other[2] or other[3] <= one[2]


def _inside(box: tuple, size: tuple) -> bool:
    return box[0] >= 0 and box[2] >= 0 and box[1] <= size[0] and box[3] <= size[1]


class Packing:
    """Entries laid out in net input rows. Each goes at its own position into the first row where its
    field overlaps no other's, or, when its field lies inside the image, into a free slot (``free``,
    from slots()); else into a new row. A unit at a position sees only its field, and the backward
    pass from it reaches only that field: fields that do not overlap leave each other's values and
    diffs as they are, so one row serves several entries."""

    def __init__(self, free: list, size: tuple, shared: bool = True):
        self.free, self.size, self.shared = free, size, shared
        self.rows = []  # per row: [fields taken, slots still free]

    def place(self, box: tuple, position: tuple) -> tuple:
        """(row, y, x, field there) for an entry of field ``box`` at ``position`` ((y, x); () for a
        vector unit, whose field, the whole input, overlaps every other)."""
        own, movable = position + (box,), bool(position) and _inside(box, self.size)
        for index, (taken, free) in enumerate(self.rows if self.shared else ()):
            if all(_apart(box, other) for other in taken):
                return self._take(index, own)
            if movable and free:
                return self._take(index, free[0])
        self.rows.append(([], list(self.free)))
        return self._take(len(self.rows) - 1, own)

    def _take(self, index: int, spot: tuple) -> tuple:
        taken, free = self.rows[index]
        taken.append(spot[-1])
        self.rows[index] = (taken, [slot for slot in free if _apart(slot[-1], spot[-1])])
        return (index,) + spot


def packed_inputs(images: list, boxes: list, spots: list, size: tuple) -> np.ndarray:
    """The net input rows of a Packing: each entry's field (the part inside its image) pasted where
    its spot (row, y, x, field) puts it."""
    rows = np.zeros((max(spot[0] for spot in spots) + 1,) + images[0].shape, images[0].dtype)
    for image, box, spot in zip(images, boxes, spots):
        target = spot[-1]
        y0, y1, x0, x1 = max(box[0], 0), min(box[1], size[0]), max(box[2], 0), min(box[3], size[1])
        dy, dx = target[0] - box[0], target[2] - box[2]  # zero unless moved (then wholly inside)
        rows[spot[0], :, y0 + dy:y1 + dy, x0 + dx:x1 + dx] = image[:, y0:y1, x0:x1]
    return rows


def spatially_local(net, layer: str) -> bool:
    """Whether every op that ``layer`` is computed from (through the input) is spatially local
    (ops.spatially_local: its output at a position depends only on inputs at nearby positions, its
    receptive field), so that fields side by side in one input row stay apart. Any other op on the
    way to a layer (a global pool in a squeeze-excitation block, a normalisation over the map,
    attention, a reshape) mixes positions, and each entry then gets a row of its own."""
    graph = net.model.graph
    needed = onnx_graph.ancestors(graph, [layer])
    data = {net.input_name}
    for node in graph.node:   # graph order is topological
        if any(name in data for name in node.input):
            data.update(node.output)
            if needed.intersection(node.output) and not ops.spatially_local(node):
                return False
    return True


def layer_packing(net, layer: str, field) -> Packing:
    """An empty Packing for entries of ``layer`` (slots only for map layers with a known field; no
    shared rows when an op on the way mixes positions)."""
    size, shape = net.input_shape[1:], net.layer(layer).shape
    if not spatially_local(net, layer):
        return Packing([], size, shared=False)
    is_map = field is not None and net.layer(layer).kind == "map" and all(isinstance(v, int) for v in shape)
    return Packing(slots(field, shape[1:], size) if is_map else [], size)


def _position(entry: Entry) -> tuple:
    return () if entry.y is None else (int(entry.y), int(entry.x))


def crop_entries(net, maxes: dict, layer: str, entries: list, kinds, field, inputs=None,
                 percentile: float = PERCENTILE) -> dict:
    """{kind: [crop per entry]} for entries of one or more units, run through the net together (one
    forward up to ``layer``, one backward per mode seeded at every entry; entries whose fields do not
    overlap share input rows, see packed_inputs). inputs: image_inputs()."""
    spec, size = net.spec.input, net.input_shape[1:]
    inputs = inputs or image_inputs(net, maxes, cached=0)
    images = [inputs(entry.image) for entry in entries]
    input_boxes = [box_of(entry, field, size) for entry in entries]
    image_size = _image_box((0,) + size[:1] + (0,) + size[1:], spec)[1::2]
    boxes = [_image_box(box, spec) for box in input_boxes]
    places = [placement(box, image_size) for box in boxes]
    crops = {}
    if "maxim" in kinds:
        crops["maxim"] = [mark_centre(shown(image, box, place), place)
                          for image, box, place in zip(net.deprocess(np.stack(images)), boxes, places)]
    backward = [kind for kind in kinds if kind in BACKWARD_MODES]
    if not backward:
        return crops
    packing = layer_packing(net, layer, field)
    spots = [packing.place(box, _position(entry)) for entry, box in zip(entries, input_boxes)]
    # unshared rows hold whole images: an op on the way reads beyond the field
    run = net.forward(packed_inputs(images, input_boxes, spots, size) if packing.shared else np.stack(images),
                      up_to=layer)
    for kind in backward:
        diffs = backward_diffs(run, layer, entries, BACKWARD_MODES[kind], [spot[:-1] for spot in spots])
        laid_out = (image_layout(_entry_diff(diffs, spot, box), spec.channel_swap, spec.transpose)
                    for spot, box in zip(spots, input_boxes))
        crops[kind] = [backward_picture(shown(diff, image_box, place), place, percentile)
                       for diff, image_box, place in zip(laid_out, boxes, places)]
    return crops


def _entry_diff(diffs: np.ndarray, spot: tuple, box: tuple) -> np.ndarray:
    """The input diff of an entry, as over its own image within its field (other entries' diffs in
    the same row lie outside it): a moved field's part moved back to its box."""
    row, target = diffs[spot[0]], spot[-1]
    if target == box:
        return row
    diff = np.zeros_like(row)
    diff[:, box[0]:box[1], box[2]:box[3]] = row[:, target[0]:target[1], target[2]:target[3]]
    return diff


def unit_groups(maxes: dict, layer: str, units, batch: int, packing: Packing = None, field=None, size=None):
    """Whole units as (unit, entries), in order, as many at a time as keeps each group within ``batch``
    entries, or, given an empty ``packing`` (layer_packing) with the layer's ``field`` and the input
    ``size``, within ``batch`` net input rows and ENTRIES_PER_ROW * ``batch`` entries."""
    group, count = [], 0
    for unit in units:
        entries = unit_entries(maxes, layer, unit)
        if packing is None:
            fits = count + len(entries) <= batch
        else:
            trial = copy.deepcopy(packing)
            for entry in entries:
                trial.place(box_of(entry, field, size), _position(entry))
            fits = len(trial.rows) <= batch and count + len(entries) <= ENTRIES_PER_ROW * batch
        if group and not fits:
            yield group
            group, count = [], 0
            if packing is not None:
                packing.rows = []
                for entry in entries:
                    packing.place(box_of(entry, field, size), _position(entry))
        elif packing is not None:
            packing.rows = trial.rows
        group.append((unit, entries))
        count += len(entries)
    if group:
        yield group


def crop_layer(net, maxes: dict, layer: str, root, field, kinds=KINDS, units=None, batch: int = 16,
               sprite_tile: int = 96, progress: bool = True, percentile: float = PERCENTILE, pool=None,
               failures: list = None) -> list:
    """Crops, montages and info.json of every unit of ``layer`` in ``maxes`` not yet done under
    ``root``, then the layer's sprites. field: the layer's receptive field (``.box(y, x)``), unused
    for vector layers; percentile: the scale of the backward crops (app.views.scaling); pool: an
    app.offline.on_ray.Pool to crop the groups of units on. Returns the units run now.
    failures: a list that gets (units, line) for each group one of whose images cannot be read; the
    other groups are still cropped and those units are left for a later run (without it: a DeepVisError)."""
    if layer not in maxes["layers"]:
        raise DeepVisError(f"{maxes.get('model')}: layer {layer}: not in maxes.json (run find_maxes on it)")
    if field is None and net.layer(layer).kind == "map":
        raise DeepVisError(f"{net.spec.name}: layer {layer}: no receptive field known for it")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise DeepVisError(f"{layer}: unknown mode(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    units = range(len(maxes["layers"][layer])) if units is None else units
    done = done_units(root, layer, units, "info.json", made_otherwise(maxes, layer, kinds))
    todo = [unit for unit in units if unit not in done]
    packing = layer_packing(net, layer, field)
    groups = list(unit_groups(maxes, layer, todo, batch, packing, field, net.input_shape[1:]))
    tasks = [[entry for _, listed in group for entry in listed] for group in groups]
    settings = {"maxes": maxes, "layer": layer, "kinds": kinds, "field": field, "percentile": percentile}
    with progress_bar(len(todo), f"{layer} crops", unit="unit", enabled=progress) as bar:
        if pool is None:
            crop = cropper(net, **settings)
            results = ((index, crop(entries)) for index, entries in enumerate(tasks))
        else:
            results = pool.map(cropper, settings, tasks, net)
        started = None   # the time from the first group's end: the first one makes sessions
        failed = set()
        for count, (index, crops) in enumerate(results):
            if isinstance(crops, str):   # an image of the group could not be read
                if failures is None:
                    raise DeepVisError(crops)
                failures.append(([unit for unit, _ in groups[index]], crops))
                failed.update(unit for unit, _ in groups[index])
                bar.update(len(groups[index]))
                continue
            start = 0
            for unit, listed in groups[index]:
                end = start + len(listed)
                _write_unit(net, maxes, layer, root, unit, listed,
                            {kind: images[start:end] for kind, images in crops.items()}, field)
                start = end
                bar.update(1)
            if progress and count == 1:
                seconds = (time.perf_counter() - started) / len(groups[index])
                bar.write(f"{layer}: {estimate_line(len(todo), seconds)}", file=sys.stderr)
            started = time.perf_counter()
    for kind in kinds:
        write_sprite(root, layer, kind, len(maxes["layers"][layer]), sprite_tile)
    return [unit for unit in todo if unit not in failed]


def made_otherwise(maxes: dict, layer: str, kinds):
    """(unit, its info.json record) -> how those crops differ from what this run makes, or None."""
    asked = [kind for kind in KINDS if kind in kinds]

    def differs(unit: int, record: dict):
        if record["model"] != maxes.get("model"):
            return f"model {record['model']}, this run's {maxes.get('model')}"
        if record["kinds"] not in (asked, []):   # a unit without entries has no kinds
            return f"modes {','.join(record['kinds'])}, this run asks {','.join(asked)}"
        made = [(entry["image"], entry["value"]) for entry in record["entries"]]
        if made != [(maxes["images"][entry.image], entry.value) for entry in unit_entries(maxes, layer, unit)]:
            return "other top images (another maxes.json)"
        return None
    return differs


def cropper(net, maxes: dict, layer: str, kinds, field, percentile: float = PERCENTILE):
    """entries -> {kind: [crop per entry]} (crop_entries) for one group of units, or the reader's line
    when one of their images cannot be read; the images of ``maxes`` read once and kept
    (image_inputs): what a process, or a Ray actor, crops with."""
    inputs = image_inputs(net, maxes)

    def crop(entries):
        if not entries:
            return {}
        try:
            return crop_entries(net, maxes, layer, entries, kinds, field, inputs, percentile)
        except DeepVisError as error:   # one line back to the driver, which goes on with the other groups
            return str(error)
    return crop


def _write_unit(net, maxes, layer, root, unit, entries, crops, field) -> None:
    for kind, images in crops.items():
        for entry, image in zip(entries, images):
            write_image_atomic(crop_path(root, layer, unit, kind, entry.rank), image)
        if images:
            write_image_atomic(montage_path(root, layer, unit, kind), unit_montage(images))
    size = net.input_shape[1:]
    all_zero = {kind: [entry.rank for entry, image in zip(entries, images) if is_all_zero_tile(image)]
                for kind, images in crops.items() if kind in BACKWARD_MODES}
    record = {"model": maxes.get("model"), "layer": layer, "unit": unit,
              "kinds": [kind for kind in KINDS if kind in crops],
              "all_zero": {kind: ranks for kind, ranks in all_zero.items() if ranks},
              "entries": [{"rank": e.rank, "value": e.value, "image": maxes["images"][e.image],
                           "image_index": e.image, "y": e.y, "x": e.x, **_boxes(box_of(e, field, size), size)}
                          for e in entries]}
    write_json_atomic(unit_dir(root, layer, unit) / "info.json", record, indent=1)


def _boxes(box: tuple, size: tuple) -> dict:
    """info.json's box (the receptive field) and shown (the part of the input drawn: the box itself
    when it fits, else its part inside the image, scaled to fill the tile), in input pixels."""
    place = placement(box, size)
    return {"box": list(box), "shown": list(box if place is None else place.source)}
