"""Channel orders over a dataset: the layers pane's k-means / PCA orders from the channel maxima
that find_maxes stored beside its ``maxes.json`` (``channel_maxima/chunk_NNNNNN.npz``).

A layer's maxima (N images x C channels) are summed chunk by chunk into the channels' C x C Gram
matrix, so memory does not grow with the dataset; the points made from it and the orders are
cached per layer until find_maxes writes maxes.json again.
"""
import functools
from pathlib import Path

import numpy as np

from app.errors import DeepVisError
from app.paths import user_path
from app.views import ordering

CACHED_LAYERS = 32


def maxes_path(folder) -> Path:
    """The maxes.json of a find_maxes output folder (or the file itself)."""
    from app.offline.maxes import MAXES_FILE   # app.net and the inputs: loaded when used

    folder = user_path(folder)
    return folder if folder.suffix == ".json" else folder / MAXES_FILE


def dataset_order(folder, layer: str, mode: str, units: int) -> ordering.ChannelOrder:
    """The ``mode`` order of ``layer``'s ``units`` channels over the dataset find_maxes scored
    into ``folder``; DeepVisError (one line) when there are no statistics for it."""
    if folder is None:
        raise DeepVisError("settings: dataset_stats_dir is not set (the --out folder of tools.find_maxes)")
    path = maxes_path(folder)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        raise DeepVisError(f"{path}: no such file (run tools.find_maxes --out {path.parent} first)") from None
    return _order(str(path), stamp, layer, mode, units)


@functools.lru_cache(maxsize=CACHED_LAYERS * len(ordering.MODES))
def _order(path: str, stamp: int, layer: str, mode: str, units: int) -> ordering.ChannelOrder:
    points = _points(path, stamp, layer)
    if len(points) != units:
        raise DeepVisError(f"{path}: layer {layer}: {len(points)} channels in the statistics, the net has "
                           f"{units} (statistics of another model?)")
    return ordering.channel_order(mode, points)


@functools.lru_cache(maxsize=CACHED_LAYERS)
def _points(path: str, stamp: int, layer: str) -> np.ndarray:
    """C x C channel points of ``layer`` (see ordering.gram_features); ``stamp`` keys the cache."""
    from app.offline.layer_stats import channel_maxima_chunks, chunk_key   # scipy: loaded when used

    maxes, folder = _stats(path, stamp)
    key, gram = chunk_key(path, maxes, layer), None
    try:
        for maxima in channel_maxima_chunks(folder, maxes["stats"]["chunks"], key):
            gram = maxima.T @ maxima if gram is None else gram + maxima.T @ maxima
    except (OSError, KeyError, ValueError) as error:
        raise DeepVisError(f"{folder}: unreadable channel maxima of {layer} ({error})") from None
    if gram is None:
        raise DeepVisError(f"{path}: no channel maxima stored for {layer}")
    return ordering.gram_features(gram)


@functools.lru_cache(maxsize=1)
def _stats(path: str, stamp: int) -> tuple:
    """maxes.json read once for every layer (an atlas orders every layer; the file holds every
    layer's top images and can be tens of MB); ``stamp`` keys the cache."""
    from app.offline.layer_stats import read_stats

    return read_stats(path)
