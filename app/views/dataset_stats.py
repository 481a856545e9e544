"""A layer's statistics over the dataset, as tools.layer_stats wrote them beside find_maxes's output
(``<folder>/stats/<layer>/stats.npz``), drawn for two pattern modes: every unit's histogram of its
spatial max over the images, its percent dead written in red, and the correlation of channel maxima
in the order layer_stats chose.

Arrays in, H x W x 3 uint8 BGR images out; both are cached per file version, as a live input asks
for them again on every frame.
"""
import functools
from pathlib import Path

import cv2
import numpy as np

from app.errors import DeepVisError
from app.views import filters
from app.views.registry import Histograms, Message, Picture, Tiles, shows

FIELDS = ("images", "edges", "counts", "percent_dead", "inactivity_edges", "inactivity_counts", "correlation",
          "order")
DEAD_COLOR = (70, 70, 255)   # red: the share of images on which the unit never fired
CACHED = 4   # layers kept drawn: the head layer's tiles and correlation take about 40 MB


def stats_file(folder, layer: str) -> Path:
    from app.offline.layer_stats import layer_folder   # matplotlib and scipy: loaded when first shown

    return layer_folder(folder, layer) / "stats.npz"


def picture(folder, layer: str, drawing, units: int) -> tuple:
    """(picture, stats) of a pattern mode for ``layer`` of ``units`` channels: what ``drawing`` (stats
    -> image, e.g. ``dead_marked_tiles``) makes of the arrays of stats.npz, and those arrays;
    DeepVisError (one line) when there are no statistics or they do not fit the layer."""
    if folder is None:
        raise DeepVisError("settings: dataset_stats_dir is not set (the --out folder of tools.find_maxes)")
    path = stats_file(folder, layer)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        raise DeepVisError(f"{path}: no statistics of {layer} (tools.layer_stats --maxes "
                           f"{Path(folder) / 'maxes.json'} makes them for the layers find_maxes scored)") from None
    stats = _read(str(path), stamp)
    if len(stats["percent_dead"]) != units:
        raise DeepVisError(f"{path}: {len(stats['percent_dead'])} channels in the statistics, {layer} has "
                           f"{units} (statistics of another model?)")
    return _picture(str(path), stamp, drawing), stats


@functools.lru_cache(maxsize=CACHED)
def _read(path: str, stamp: int) -> dict:
    """stats.npz's arrays; ``stamp`` (the file's mtime) keys the cache."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {field: data[field] for field in FIELDS}
    except (OSError, ValueError, KeyError) as error:
        raise DeepVisError(f"{path}: unreadable statistics ({error}); run tools.layer_stats again") from None


@functools.lru_cache(maxsize=CACHED)
def _picture(path: str, stamp: int, drawing) -> np.ndarray:
    return drawing(_read(path, stamp))


def correlation_picture(stats: dict) -> np.ndarray:
    """The correlation of the channels' maxima, -1 blue to 1 red, in layer_stats's order."""
    return filters.correlation_image(stats["correlation"], size=600, order=stats["order"])


def dead_marked_tiles(stats: dict, height: int = 64, width: int = 96) -> np.ndarray:
    """Every unit's histogram of spatial maxima (bars scaled to its tallest bin, a gray line at 0)
    with its percent dead in red where it is not 0."""
    tiles = filters.histogram_tiles(stats["counts"], stats["edges"], height, width)
    for tile, dead in zip(tiles, stats["percent_dead"]):
        if dead > 0:
            cv2.putText(tile, f"{dead:.0f}% dead", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, DEAD_COLOR, 1, cv2.LINE_AA)
    return tiles


def _units(net, layer: str) -> int:
    shape = net.layer(layer).shape
    return shape[0] if shape else 1


@shows("activation histogram", "layers", place=20)
def activation_histograms(net, layer: str, stats_folder):
    """Every unit's histogram of its spatial max over the dataset; the jpgvis pane draws the
    selected unit's large from the statistics."""
    try:
        tiles, stats = picture(stats_folder, layer, dead_marked_tiles, _units(net, layer))
    except DeepVisError as error:
        return Message(str(error))
    return Tiles(tiles, detail=Histograms(stats))


@shows("activation correlation", "layers", place=21)
def activation_correlation(net, layer: str, stats_folder):
    """The correlation of the channels' maxima over the dataset, in layer_stats's order."""
    try:
        return Picture(picture(stats_folder, layer, correlation_picture, _units(net, layer))[0])
    except DeepVisError as error:
        return Message(str(error))
