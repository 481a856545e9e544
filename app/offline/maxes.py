"""One pass over a dataset keeping, for every channel of chosen layers, its top-k images.

A channel's score on an image is its spatial max (a vector layer's value itself), found at the first
position in C order when tied; app.net.spatial_max computes both inside the ONNX graph, but for
the column of some ties, which Net.forward settles for the entries kept (see _settle_ties). The top-k
are kept streaming, ordered by value (descending; ascending for the bottom-k of ``--min``) then by
image index, so the result does not depend on the batching.
Alongside, every image's channel maxima are appended, one file per checkpoint, to
``OUT/channel_maxima/chunk_NNNNNN.npz`` (keys ``image`` and ``l0``, ``l1``, ... in the order of the
layers) for app.offline.layer_stats: disk grows with the dataset (4 bytes per image and channel),
memory does not (at most ROWS_BUDGET of them are held).

Checkpoints (``OUT/find_maxes.state.npz``, written whole) hold the top-k so far and the next image;
a restarted run goes on from there and ends with the same maxes.json as an uninterrupted one.
"""
import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from app.errors import DeepVisError
from app.files import read_npz, write_bytes_atomic, write_npz_atomic
from app.inputs.files import natural_key
from app.inputs.lists import ImageListSource
from app.net import onnx_graph
from app.net.preprocess import read_image
from app.net.spatial_max import UNKNOWN, SpatialMax, first_positions, positions
from app.offline.progress import progress_bar

STATE_FILE = "find_maxes.state.npz"
MAXES_FILE = "maxes.json"
CHUNK_DIR = "channel_maxima"
ROWS_BUDGET = 32 * 2 ** 20  # bytes of channel maxima held before a checkpoint writes them out


def list_images(source) -> tuple:
    """(paths, labels) of a folder (every file, natural name order) or of a list file (``path [label]``)."""
    source = Path(source).expanduser()
    if source.is_dir():
        paths = sorted((p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")),
                       key=lambda p: natural_key(p.name))
        labels = [None] * len(paths)
    elif source.is_file():
        entries = ImageListSource(source).entries
        paths, labels = [entry.paths[0] for entry in entries], [entry.label for entry in entries]
    else:
        raise DeepVisError(f"{source}: no such folder or image list")
    if not paths:
        raise DeepVisError(f"{source}: no images in it")
    return [str(Path(p).resolve()) for p in paths], labels


def unit_layers(net) -> list:
    """Every map and vector layer except a pre-activation (one that only elementwise activations read,
    onnx_graph.in_place_activations): what Caffe's in-place ReLUs showed as a conv's units, and what a
    researcher ranks images by; it also lets ONNX Runtime fuse each conv with its activation."""
    names = [layer.name for layer in net.layers]
    pre_activations = onnx_graph.in_place_activations(net.model, names)
    return [layer.name for layer in net.layers if layer.kind in ("map", "vector") and layer.name not in pre_activations]


def choose_layers(net, names=None) -> list:
    """Layers by name: None or "units" (unit_layers), "all" (every map and vector layer) or a comma
    list; other ranks cannot be scored."""
    if names in (None, "units", ["units"]):
        return unit_layers(net)
    if names in ("all", ["all"]):
        return [layer.name for layer in net.layers if layer.kind in ("map", "vector")]
    names = names.split(",") if isinstance(names, str) else list(names)
    for name in names:
        if net.layer(name).kind not in ("map", "vector"):
            raise DeepVisError(f"{net.spec.name}: layer {name}: shape {net.layer(name).shape} is neither "
                               "C x H x W nor C; find_maxes scores channels of those only")
    return names


def read_maxes(path) -> dict:
    """maxes.json as tools.find_maxes writes it, image paths resolved against its folder."""
    path = Path(path)
    if not path.is_file():
        raise DeepVisError(f"{path}: no such file (run tools.find_maxes first)")
    try:
        maxes = json.loads(path.read_text(encoding="utf-8"))
        maxes["images"] = [str(_resolve(image, path.parent)) for image in maxes["images"]]
        maxes["layers"] = dict(maxes["layers"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DeepVisError(f"{path}: not a maxes.json from tools.find_maxes ({error})") from None
    return maxes


def _resolve(image: str, folder: Path) -> Path:
    image = Path(image)
    return image if image.is_absolute() or image.exists() else folder / image


class TopK:
    """The k best (value, image, y, x) of every channel, best first; ties go to the lower image index."""

    FIELDS = ("value", "image", "y", "x")

    def __init__(self, channels: int, k: int, descending: bool = True):
        self.k, self.descending = k, descending
        self.value = np.zeros((channels, 0), np.float32)
        self.image, self.y, self.x = (np.zeros((channels, 0), np.int64) for _ in range(3))

    def add(self, maxima: np.ndarray, images: np.ndarray, y=None, x=None) -> None:
        """Offer one batch: maxima N x C, images (N,) dataset indices, y / x N x C or None."""
        images = np.asarray(images, np.int64)
        channels = self._channels_improved(maxima, images)
        if channels is not None and not len(channels):
            return
        pick = slice(None) if channels is None else channels
        none = np.full(maxima.shape, -1, np.int64)
        offered = {"value": maxima.T[pick], "image": np.broadcast_to(images[None], maxima.T.shape)[pick],
                   "y": (none if y is None else y).T[pick], "x": (none if x is None else x).T[pick]}
        joined = {f: np.concatenate([getattr(self, f)[pick], offered[f]], axis=1) for f in self.FIELDS}
        key = -joined["value"] if self.descending else joined["value"]
        order = np.lexsort((joined["image"], key), axis=1)[:, :self.k]
        for field in self.FIELDS:
            best = np.take_along_axis(joined[field], order, axis=1)
            if channels is None:
                setattr(self, field, best)
            else:
                getattr(self, field)[channels] = best

    def _channels_improved(self, maxima: np.ndarray, images: np.ndarray):
        """Channels where some offer ranks before the last kept entry (None: not k kept yet, all)."""
        if self.value.shape[1] < self.k:
            return None
        last_value, last_image = self.value[:, -1], self.image[:, -1]
        better = maxima > last_value if self.descending else maxima < last_value
        better |= (maxima == last_value) & (images[:, None] < last_image)
        return np.flatnonzero(better.any(axis=0) | np.isnan(last_value))  # NaN ranks last

    def part(self, start: int, stop: int) -> "TopK":
        """Channels start..stop-1, sharing this one's arrays."""
        part = TopK(0, self.k, self.descending)
        for field in self.FIELDS:
            setattr(part, field, getattr(self, field)[start:stop])
        return part

    def arrays(self, prefix: str) -> dict:
        return {f"{prefix}.{field}": getattr(self, field) for field in self.FIELDS}

    def load(self, arrays: dict, prefix: str) -> None:
        for field in self.FIELDS:
            setattr(self, field, arrays[f"{prefix}.{field}"])

    ENTRY = '{"value": %s, "image": %d, "y": %s, "x": %s}'

    def json_text(self, vector: bool) -> str:
        """Per channel, [{"value", "image", "y", "x"}, ...] best first (y, x null for vector layers), as
        the JSON text json.dumps would write; formatted directly, as a layer may hold 100 000 entries."""
        channels, kept = self.value.shape
        if not kept:
            return "[" + ", ".join(["[]"] * channels) + "]"
        values = [repr(v) if math.isfinite(v) else "null" for v in self.value.ravel().tolist()]
        y, x = (["null"] * len(values),) * 2 if vector else (map(str, self.y.ravel().tolist()),
                                                             map(str, self.x.ravel().tolist()))
        entries = [self.ENTRY % entry for entry in zip(values, self.image.ravel().tolist(), y, x)]
        return "[" + ", ".join("[" + ", ".join(entries[i:i + kept]) + "]"
                               for i in range(0, len(entries), kept)) + "]"


class FindMaxes:
    """The pass itself: ``run()`` goes on from the last checkpoint under ``out``, writes maxes.json and
    returns its fields but the rankings (read those from the file)."""

    def __init__(self, net, paths: list, layers: list, out, labels=None, model=None, top: int = 9,
                 minima: bool = False, batch: int = 8, checkpoint_every: int = 20, stats: bool = True):
        if top < 1 or batch < 1 or checkpoint_every < 1:
            raise DeepVisError(f"{out}: --top, --batch and --checkpoint-every must be at least 1")
        self.net, self.paths, self.layers, self.out = net, list(paths), list(layers), Path(out)
        self.labels = labels if labels and any(label is not None for label in labels) else None
        self.model = model or net.spec.name
        self.top, self.batch, self.checkpoint_every, self.stats = top, batch, checkpoint_every, stats
        channels = {layer: net.layer(layer).shape[0] for layer in self.layers}
        ends = np.cumsum([channels[layer] for layer in self.layers])
        # every layer's channels side by side in one ranking: one top-k update per batch, not per layer
        self._spans = {layer: (int(end) - channels[layer], int(end)) for layer, end in zip(self.layers, ends)}
        self.rankings = {"layers": TopK(int(ends[-1]), top)}
        if minima:
            self.rankings["layers_min"] = TopK(int(ends[-1]), top, descending=False)
        settings = [self.model, self.paths, self.layers, top, minima, batch, checkpoint_every, stats]
        self.signature = hashlib.sha256(json.dumps(settings).encode()).hexdigest()
        self.next, self.skipped, self.chunks = 0, [], []
        self._rows, self._row_images = [], []  # channel maxima (images x every layer's channels) to write
        self._spatial_max = SpatialMax(net, self.layers)
        self._maps = [layer for layer in self.layers if net.layer(layer).kind == "map"]
        self._map_channels = np.zeros(int(ends[-1]), bool)
        for layer in self._maps:
            self._map_channels[slice(*self._spans[layer])] = True
        self._row_bytes = 4 * sum(channels.values()) if stats else 0
        self._resume()

    # -- checkpoints ------------------------------------------------------------------------
    def _resume(self) -> None:
        path = self.out / STATE_FILE
        if not path.is_file():
            return
        try:
            arrays = read_npz(path)
            state = json.loads(str(arrays.pop("state")))
        except (OSError, ValueError, KeyError) as error:
            raise DeepVisError(f"{path}: unreadable checkpoint ({error}); delete it to start over") from None
        if state["signature"] != self.signature:
            raise DeepVisError(f"{path}: made by a run with other images, layers or options; "
                               "delete it (or choose another --out) to start over")
        self.next, self.skipped, self.chunks = state["next"], state["skipped"], state["chunks"]
        for key, ranking in self.rankings.items():
            ranking.load(arrays, key)

    def _checkpoint(self) -> None:
        if self.next == len(self.paths):  # entries evicted before the end need no column
            self._settle_ties()
        if self._row_images:
            name = f"chunk_{len(self.chunks):06d}.npz"
            rows = np.concatenate(self._rows)
            rows = {f"l{i}": rows[:, slice(*self._spans[layer])] for i, layer in enumerate(self.layers)}
            write_npz_atomic(self.out / CHUNK_DIR / name, image=np.asarray(self._row_images, np.int64), **rows)
            self.chunks.append(name)
            self._rows, self._row_images = [], []
        arrays = {}
        for key, ranking in self.rankings.items():
            arrays.update(ranking.arrays(key))
        state = {"signature": self.signature, "next": self.next, "skipped": self.skipped, "chunks": self.chunks}
        write_npz_atomic(self.out / STATE_FILE, state=np.array(json.dumps(state)), **arrays)

    # -- the pass ---------------------------------------------------------------------------
    def _read(self, start: int) -> tuple:
        """(preprocessed batch or None, dataset indices read, indices skipped) of one batch."""
        images, indices, skipped = [], [], []
        for index in range(start, min(start + self.batch, len(self.paths))):
            try:
                images.append(read_image(self.paths[index]))
                indices.append(index)
            except DeepVisError:
                skipped.append(index)
        return (self.net.preprocess(images) if images else None), indices, skipped

    def _score(self, batch: np.ndarray, indices: list) -> None:
        scores = self._spatial_max.run(batch)
        maxima = np.concatenate([scores[layer][0] for layer in self.layers], axis=1)
        indices = np.asarray(indices)
        for ranking in self.rankings.values():
            ranking.add(maxima, indices)
            self._place(ranking, scores, indices)
        if self.stats:
            self._rows.append(maxima)
            self._row_images.extend(indices.tolist())

    def _place(self, ranking: TopK, scores: dict, indices: np.ndarray) -> None:
        """The positions of the entries this batch brought in (few once every channel holds k)."""
        # the batch's images span indices[0]..indices[-1]; the others in that span were skipped
        fresh = (ranking.image >= indices[0]) & (ranking.image <= indices[-1]) & self._map_channels[:, None]
        if not fresh.any():
            return
        for layer in self._maps:
            start, stop = self._spans[layer]
            here = fresh[start:stop]
            if here.any():
                channel, _ = np.nonzero(here)
                row = np.searchsorted(indices, ranking.image[start:stop][here])  # indices ascend
                _, rows, columns = scores[layer]
                ranking.y[start:stop][here], ranking.x[start:stop][here] = positions(rows[row, channel],
                                                                                     columns[row, channel])

    def _settle_ties(self) -> None:
        """The column of each kept entry whose max several rows and several columns hold (a dead or
        clamped channel), from the layer itself: its image is read again and run through
        Net.forward, the brute force, one at a time (a run holds every tensor of its batch).
        Done once, at the end, for the entries kept."""
        unsettled = {key: (ranking.x == UNKNOWN) & self._map_channels[:, None]
                     for key, ranking in self.rankings.items()}
        images = np.unique(np.concatenate([self.rankings[key].image[open_] for key, open_ in unsettled.items()]))
        for image in images.tolist():
            values = self.net.forward([read_image(self.paths[image])])
            for layer in self._maps:
                start, stop = self._spans[layer]
                found = None  # this layer's first positions, computed once for both rankings
                for key, open_ in unsettled.items():
                    ranking = self.rankings[key]
                    here = open_[start:stop] & (ranking.image[start:stop] == image)
                    if not here.any():
                        continue
                    found = found or [a[0] for a in first_positions(values[layer])]
                    maxima, y, x = found
                    channel = np.nonzero(here)[0]
                    if not np.array_equal(maxima[channel], ranking.value[start:stop][here], equal_nan=True):
                        raise DeepVisError(f"{self.paths[image]}: layer {layer}: a max differs from the one scored "
                                           "(the image changed on disk, or Net.forward disagrees with find_maxes)")
                    ranking.y[start:stop][here], ranking.x[start:stop][here] = y[channel], x[channel]
            del values   # before the next image's forward, which then reuses its memory

    def run(self, progress: bool = True) -> dict:
        """Score every image not yet done, checkpointing every ``checkpoint_every`` batches (sooner when
        the channel maxima held reach ROWS_BUDGET); write maxes.json."""
        starts = list(range(self.next, len(self.paths), self.batch))
        with ThreadPoolExecutor(max_workers=1) as reader, \
                progress_bar(len(self.paths), "find_maxes", enabled=progress, initial=self.next) as bar:
            pending = reader.submit(self._read, starts[0]) if starts else None
            for number, start in enumerate(starts):
                batch, indices, skipped = pending.result()
                if number + 1 < len(starts):  # decode the next batch while this one runs
                    pending = reader.submit(self._read, starts[number + 1])
                if batch is not None:
                    self._score(batch, indices)
                self.skipped.extend(skipped)
                self.next = min(start + self.batch, len(self.paths))
                bar.update(self.next - start)
                if (start // self.batch + 1) % self.checkpoint_every == 0 or self.next == len(self.paths) \
                        or len(self._row_images) * self._row_bytes >= ROWS_BUDGET:
                    self._checkpoint()
        summary = self.summary()
        write_bytes_atomic(self.out / MAXES_FILE, self.result_text(summary).encode("utf-8"))
        return summary

    def summary(self) -> dict:
        """maxes.json's fields but the rankings (see docs/offline_stats.md)."""
        summary = {"model": self.model, "images": self.paths}
        if self.labels:
            summary["labels"] = self.labels
        summary["shapes"] = {layer: list(self.net.layer(layer).shape) for layer in self.layers}
        summary["skipped"] = [self.paths[index] for index in self.skipped]
        summary["skipped_count"] = len(self.skipped)
        if self.stats:
            summary["stats"] = {"folder": CHUNK_DIR, "chunks": self.chunks, "layers": self.layers,
                                "images": len(self.paths) - len(self.skipped)}
        return summary

    def result_text(self, summary: dict) -> str:
        """maxes.json's text: the summary, then "layers" (and "layers_min") with every channel's ranking."""
        vector = {layer: self.net.layer(layer).kind == "vector" for layer in self.layers}
        texts = [f'"{key}": {{' + ", ".join(f"{json.dumps(layer)}: "
                                             f"{ranking.part(*self._spans[layer]).json_text(vector[layer])}"
                                             for layer in self.layers) + "}"
                 for key, ranking in self.rankings.items()]
        return json.dumps(summary)[:-1] + ", " + ", ".join(texts) + "}"
