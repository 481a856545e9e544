"""Per-layer statistics of channel maxima over a dataset: histograms, inactivity and correlation.

Reads the channel maxima find_maxes stored (``OUT/channel_maxima/chunk_NNNNNN.npz``), one layer at a
time and one chunk at a time, in two passes: the first finds every channel's range, sum and dead
count; the second fills the histograms (the channel's own range cut into fixed bins) and the centred
cross-products of the correlation. Memory holds a C x C matrix per layer, never the N x C maxima.

A channel is "dead" on an image when its spatial max is <= 0 (a ReLU that never fired).
Writes ``OUT/stats/<layer folder>/{stats.npz, histograms.png, inactivity.png, correlation.png}``;
a killed run, restarted, keeps the layers it finished (see _source).
"""
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from app.errors import DeepVisError
from app.files import read_npz, write_image_atomic, write_npz_atomic
from app.offline.maxes import read_maxes
from app.offline.progress import progress_bar
from app.paths import user_path
from app.unit_images import folder_name
from app.views import filters, grid

STATS_DIR = "stats"
ORDERS = ("cluster", "pca", "none")
MAX_PANELS = 64  # channel histograms drawn in histograms.png (all are in stats.npz)
CORRELATION_SIZE = 600  # pixels a side of correlation.png's matrix, as the app draws it


@dataclass
class LayerStats:
    """One layer's statistics; ``edges`` and ``counts`` hold one row per channel."""
    layer: str
    images: int
    minimum: np.ndarray        # (C,) smallest spatial max of each channel
    maximum: np.ndarray        # (C,)
    mean: np.ndarray           # (C,)
    edges: np.ndarray          # C x (bins + 1): the channel's range [min(0, min), max] in equal bins
    counts: np.ndarray         # C x bins: images per bin
    percent_dead: np.ndarray   # (C,): share of images (percent) whose max is <= 0
    inactivity_edges: np.ndarray   # bins + 1 edges over 0..100 percent dead
    inactivity_counts: np.ndarray  # channels per percent-dead bin
    correlation: np.ndarray    # C x C correlation of channel maxima (channel order), NaN -> 0
    order: np.ndarray          # channels in display order (a permutation)

    def arrays(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "layer"} | {
            "layer": np.array(self.layer)}


def read_stats(maxes_path) -> tuple:
    """(maxes.json content, folder of its chunks); refuses a run made without statistics."""
    maxes_path = Path(maxes_path)
    maxes = read_maxes(maxes_path)
    if "stats" not in maxes:
        raise DeepVisError(f"{maxes_path}: made with --no-stats; run tools.find_maxes again without it")
    if maxes["stats"]["images"] < 1:
        raise DeepVisError(f"{maxes_path}: no image was scored")
    return maxes, maxes_path.parent / maxes["stats"]["folder"]


def chunk_key(maxes_path, maxes: dict, layer: str) -> str:
    """The key of ``layer``'s maxima in find_maxes's chunks; an error if find_maxes did not score it."""
    stored = maxes["stats"]["layers"]
    if layer not in stored:
        shown = ", ".join(stored[:4]) + (f" and {len(stored) - 4} more" if len(stored) > 4 else "")
        raise DeepVisError(f"{maxes_path}: layer {layer}: not scored by find_maxes (it scored {shown}; "
                           "--layers all scores every layer)")
    return f"l{stored.index(layer)}"


def channel_maxima_chunks(folder: Path, names: list, key: str):
    """One layer's channel maxima (images x channels, float64), chunk by chunk, as find_maxes wrote them."""
    for name in names:
        with np.load(folder / name, allow_pickle=False) as data:
            yield data[key].astype(np.float64)


def histogram_edges(minimum: np.ndarray, maximum: np.ndarray, bins: int) -> np.ndarray:
    """C x (bins + 1) equal bins over [min(0, min), max] (a constant channel gets a width of 1)."""
    low = np.minimum(minimum, 0.0)
    high = np.where(maximum > low, maximum, low + 1.0)
    return np.linspace(low, high, bins + 1, axis=1)


def channel_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """C x bins counts of N x C values, as np.histogram does per column (last bin closed)."""
    bins = edges.shape[1] - 1
    counts = np.zeros((values.shape[1], bins), np.int64)
    for channel in range(values.shape[1]):
        column = values[:, channel]
        where = np.clip(np.searchsorted(edges[channel], column, side="right") - 1, 0, bins - 1)
        counts[channel] = np.bincount(where, minlength=bins)
    return counts


def correlation_order(correlation: np.ndarray, how: str) -> np.ndarray:
    """Channels in display order: "cluster" (average linkage on 1 - correlation), "pca" (by the
    loading on the first principal component of the correlation) or "none"."""
    channels = correlation.shape[0]
    if how not in ORDERS:
        raise DeepVisError(f"settings.py: layer_stats_order: {how!r} is not one of {', '.join(ORDERS)}")
    if how == "none" or channels < 3:
        return np.arange(channels)
    if how == "pca":
        first = np.linalg.eigh(correlation)[1][:, -1]
        first = first if first.sum() >= 0 else -first  # the eigenvector's sign is arbitrary
        return np.argsort(-first, kind="stable")
    distance = np.clip(1.0 - correlation, 0.0, 2.0)
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0.0)
    return leaves_list(linkage(squareform(distance, checks=False), method="average"))


def compute_layer(folder: Path, chunks: list, key: str, layer: str, bins: int, order: str,
                  bar=None) -> LayerStats:
    """Both passes over one layer's maxima (``key`` of every chunk)."""
    images = 0
    minimum = maximum = total = dead = None
    for values in channel_maxima_chunks(folder, chunks, key):
        if minimum is None:
            minimum, maximum = np.full(values.shape[1], np.inf), np.full(values.shape[1], -np.inf)
            total, dead = np.zeros(values.shape[1]), np.zeros(values.shape[1], np.int64)
        minimum, maximum = np.minimum(minimum, values.min(axis=0)), np.maximum(maximum, values.max(axis=0))
        total += values.sum(axis=0)
        dead += (values <= 0).sum(axis=0)
        images += len(values)
        if bar is not None:
            bar.update(1)
    mean, edges = total / images, histogram_edges(minimum, maximum, bins)
    counts, products = np.zeros((len(mean), bins), np.int64), np.zeros((len(mean), len(mean)))
    for values in channel_maxima_chunks(folder, chunks, key):
        counts += channel_counts(values, edges)
        centred = values - mean
        products += centred.T @ centred
        if bar is not None:
            bar.update(1)
    spread = np.sqrt(np.diag(products))
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.clip(np.nan_to_num(products / np.outer(spread, spread), nan=0.0), -1.0, 1.0)
    percent_dead = 100.0 * dead / images
    inactivity_counts, inactivity_edges = np.histogram(percent_dead, bins=bins, range=(0.0, 100.0))
    return LayerStats(layer, images, minimum, maximum, mean, edges, counts, percent_dead,
                      inactivity_edges, inactivity_counts, correlation, correlation_order(correlation, order))


# -- pictures (BGR uint8, for the app and the PNGs) --------------------------------------------
def _figure_image(figure: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR)


def histograms_image(edges: np.ndarray, counts: np.ndarray, percent_dead: np.ndarray,
                     channels=None, title: str = "") -> np.ndarray:
    """Small histograms of the given channels (default: the first 64), each titled with its percent dead."""
    channels = list(range(min(len(counts), MAX_PANELS)) if channels is None else channels)
    columns = int(np.ceil(np.sqrt(len(channels))))
    rows = int(np.ceil(len(channels) / columns))
    figure = Figure(figsize=(1.6 * columns, 1.3 * rows + 0.4), dpi=100)
    for slot, channel in enumerate(channels):
        axes = figure.add_subplot(rows, columns, slot + 1)
        widths = np.diff(edges[channel])
        axes.bar(edges[channel][:-1], counts[channel], width=widths, align="edge", color="tab:blue")
        axes.set_title(f"{channel}: {percent_dead[channel]:.0f}% dead", fontsize=7)
        axes.tick_params(labelsize=5)
    figure.suptitle(title or "spatial max over the dataset, per channel", fontsize=9)
    figure.tight_layout()
    return _figure_image(figure)


def inactivity_image(edges: np.ndarray, counts: np.ndarray, title: str = "") -> np.ndarray:
    """The layer's channels counted by percent dead (a spike at 100 = dead ReLUs)."""
    figure = Figure(figsize=(5, 3.2), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    axes.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:red")
    axes.set_xlabel("percent of images with max <= 0")
    axes.set_ylabel("channels")
    axes.set_title(title or "inactivity", fontsize=9)
    figure.tight_layout()
    return _figure_image(figure)


def correlation_image(correlation: np.ndarray, order: np.ndarray, title: str = "") -> np.ndarray:
    """The correlation matrix with rows and columns in ``order``, coloured from -1 to 1 with a colour
    bar (the picture of the app's "activation correlation"), under ``title``."""
    image = filters.correlation_image(correlation, size=CORRELATION_SIZE, order=order)
    return np.vstack([grid.caption(title or "correlation of channel maxima", image.shape[1]), image])


def layer_folder(out, layer: str) -> Path:
    """Where a layer's statistics go: ``out/stats/<layer folder>/`` (stats.npz and the PNGs)."""
    return user_path(out) / STATS_DIR / folder_name(layer)


def write_layer(out: Path, stats: LayerStats, source: str = "") -> Path:
    """The three PNGs, then stats.npz (holding ``source``, see _source), in layer_folder; returns
    that folder. stats.npz comes last: a layer counts as done once it exists."""
    folder = layer_folder(out, stats.layer)
    write_image_atomic(folder / "histograms.png", histograms_image(stats.edges, stats.counts, stats.percent_dead,
                                                                    title=f"{stats.layer}: spatial max per channel"))
    write_image_atomic(folder / "inactivity.png", inactivity_image(stats.inactivity_edges, stats.inactivity_counts,
                                                                    title=f"{stats.layer}: inactivity"))
    write_image_atomic(folder / "correlation.png", correlation_image(stats.correlation, stats.order,
                                                                      title=f"{stats.layer}: correlation"))
    write_npz_atomic(folder / "stats.npz", source=np.array(source), **stats.arrays())
    return folder


def _source(folder: Path, chunks: list, layer: str, bins: int, order: str) -> str:
    """What a layer's statistics are made from: its chunks as they are on disk and the options. A
    restart keeps the statistics written with the same source and makes the others again."""
    files = []
    for name in chunks:
        found = (folder / name).stat()
        files.append((name, found.st_size, found.st_mtime_ns))
    return json.dumps({"layer": layer, "bins": bins, "order": order, "chunks": files})


def _done(out: Path, layer: str, source: str):
    """The LayerStats written before from the same source, or None."""
    try:
        arrays = read_npz(layer_folder(out, layer) / "stats.npz")
    except (OSError, ValueError):
        return None
    if str(arrays.pop("source", "")) != source:
        return None
    arrays["layer"], arrays["images"] = str(arrays["layer"]), int(arrays["images"])
    return LayerStats(**arrays)


def layer_stats(maxes_path, layers=None, bins: int = 50, order: str = "cluster", progress: bool = True,
                pool=None) -> dict:
    """Statistics of the chosen layers (default: every layer find_maxes stored), written beside
    maxes.json; returns layer -> LayerStats. pool: an app.offline.on_ray.Pool computing one layer per
    task (its workers read the chunks: one machine, or a file system they all see)."""
    if bins < 1:
        raise DeepVisError(f"{maxes_path}: --bins must be at least 1")
    maxes, folder = read_stats(maxes_path)
    stored, chunks = maxes["stats"]["layers"], maxes["stats"]["chunks"]
    layers = stored if layers in (None, "all", ["all"]) else (
        layers.split(",") if isinstance(layers, str) else list(layers))
    keys = {layer: chunk_key(maxes_path, maxes, layer) for layer in layers}
    out, results = Path(maxes_path).parent, {}
    try:
        sources = {layer: _source(folder, chunks, layer, bins, order) for layer in layers}
    except OSError as error:
        raise DeepVisError(f"{folder}: a chunk of channel maxima is missing ({error})") from None
    with progress_bar(2 * len(chunks) * len(layers), "layer_stats", unit="chunk", enabled=progress) as bar:
        results = {layer: _done(out, layer, sources[layer]) for layer in layers}
        todo = [layer for layer in layers if results[layer] is None]
        bar.update(2 * len(chunks) * (len(layers) - len(todo)))
        settings = {"folder": folder.resolve(), "chunks": chunks, "bins": bins, "order": order}
        if pool is None:
            compute = layer_computer(**settings, bar=bar)
            computed = ((index, compute((keys[layer], layer))) for index, layer in enumerate(todo))
        else:
            computed = pool.map(layer_computer, settings, [(keys[layer], layer) for layer in todo])
        for index, result in computed:
            results[todo[index]] = result
            write_layer(out, result, sources[todo[index]])
            if pool is not None:
                bar.update(2 * len(chunks))
    return results


def layer_computer(folder: Path, chunks: list, bins: int, order: str, bar=None):
    """(chunk key, layer) -> its LayerStats (compute_layer): what a process, or a Ray actor, runs."""
    return lambda task: compute_layer(folder, chunks, task[0], task[1], bins, order, bar)
