"""One pass over a dataset keeping, for every channel of chosen layers, its top-k images.

A channel's score on an image is its spatial max (a vector layer's value itself), found at the first
position in C order when tied; app.net.spatial_max computes both inside the ONNX graph, but for
the column of some ties, which Net.forward settles for the entries kept (see _settle_ties). The top-k
are kept streaming, ordered by value (descending; ascending for the bottom-k of ``--min``) then by
image index, so the result does not depend on the batching.
Alongside, every image's channel maxima are written, one file per shard (NNNNNN: its number), to
``OUT/channel_maxima/chunk_NNNNNN.npz`` (keys ``image`` and ``l0``, ``l1``, ... in the order of the
layers) for app.offline.layer_stats: disk grows with the dataset (4 bytes per image and channel),
memory does not (a shard holds at most ROWS_BUDGET of them).

The image list is cut into shards (contiguous ranges) scored one after the other, or side by side on
Ray (app.offline.on_ray): every shard's top-k merge exactly into the result. Checkpoints
(``OUT/find_maxes.state.npz``, written whole after each shard) hold the merged top-k and the shards
done; a restarted run scores the others and ends with the same maxes.json as an uninterrupted one.
"""
import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import DeepVisError
from app.files import read_npz, write_bytes_atomic, write_npz_atomic
from app.inputs.files import natural_key
from app.inputs.lists import ImageListSource
from app.net import onnx_graph
from app.net.spatial_max import UNKNOWN, SpatialMax, first_positions, positions
from app.offline import image_sources
from app.offline.progress import progress_bar
from app.paths import user_path

STATE_FILE = "find_maxes.state.npz"
MAXES_FILE = "maxes.json"
CHUNK_DIR = "channel_maxima"
ROWS_BUDGET = 32 * 2 ** 20  # bytes of channel maxima a shard holds at most (shards are cut shorter)


def list_images(source) -> tuple:
    """(paths, labels) of a folder (every file, natural name order), a folder URI (image_sources) or a
    list file (``path [label]``)."""
    if image_sources.is_uri(source):
        paths = image_sources.list_folder(str(source))
        if not paths:
            raise DeepVisError(f"{source}: no images in it")
        return paths, [None] * len(paths)
    source = user_path(source)
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


def _resolve(image: str, folder: Path):
    if image_sources.is_uri(image):
        return image
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
        best = self._best({f: np.concatenate([getattr(self, f)[pick], offered[f]], axis=1) for f in self.FIELDS})
        for field in self.FIELDS:
            if channels is None:
                setattr(self, field, best[field])
            else:
                getattr(self, field)[channels] = best[field]

    def merge(self, other: "TopK") -> None:
        """Take in a ranking of the same channels over other images: the k best of both."""
        best = self._best({f: np.concatenate([getattr(self, f), getattr(other, f)], axis=1) for f in self.FIELDS})
        for field in self.FIELDS:
            setattr(self, field, best[field])

    def _best(self, joined: dict) -> dict:
        """Each channel's k first entries of ``joined`` (field -> channels x n) in ranking order."""
        key = -joined["value"] if self.descending else joined["value"]
        order = np.lexsort((joined["image"], key), axis=1)[:, :self.k]
        return {field: np.take_along_axis(values, order, axis=1) for field, values in joined.items()}

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


@dataclass
class Partial:
    """What one shard (a contiguous range of the image list) gives: every ranking's top-k over its
    images, the channel maxima of those it scored (for the statistics) and the ones it skipped.
    Shards merge exactly in any order (FindMaxes.add): the top-k of a union is the top-k of the
    parts' top-k under one total order, value then image index."""
    shard: int
    rankings: dict     # key ("layers", "layers_min") -> TopK
    rows: np.ndarray   # scored images x every layer's channels (none without statistics)
    images: np.ndarray  # their dataset indices, ascending
    skipped: list      # indices that could not be read


class Scorer:
    """Scores shards of an image list with one net: what a process (or a Ray actor) holds; its
    session is made once."""

    def __init__(self, net, layers: list, top: int = 9, minima: bool = False, batch: int = 8, stats: bool = True):
        self.net, self.layers, self.top, self.minima, self.batch, self.stats = net, list(layers), top, minima, batch, stats
        channels = {layer: net.layer(layer).shape[0] for layer in self.layers}
        ends = np.cumsum([channels[layer] for layer in self.layers])
        self.channels = int(ends[-1])
        # every layer's channels side by side in one ranking: one top-k update per batch, not per layer
        self.spans = {layer: (int(end) - channels[layer], int(end)) for layer, end in zip(self.layers, ends)}
        self.maps = [layer for layer in self.layers if net.layer(layer).kind == "map"]
        self.map_channels = np.zeros(self.channels, bool)
        for layer in self.maps:
            self.map_channels[slice(*self.spans[layer])] = True
        self.row_bytes = 4 * self.channels if stats else 0
        self._spatial_max = None   # made on the first shard: a driver that only merges needs none

    def settings(self) -> dict:
        """The arguments (but the net) that make an equal Scorer elsewhere."""
        return {"layers": self.layers, "top": self.top, "minima": self.minima, "batch": self.batch,
                "stats": self.stats}

    def rankings(self) -> dict:
        """Empty rankings: "layers" (top-k), and "layers_min" (bottom-k) with minima."""
        rankings = {"layers": TopK(self.channels, self.top)}
        if self.minima:
            rankings["layers_min"] = TopK(self.channels, self.top, descending=False)
        return rankings

    def __call__(self, task: tuple) -> Partial:
        """A shard's Partial from a task (paths, shard, first): how a Ray actor calls it."""
        return self.shard(*task)

    def shard(self, paths: list, shard: int, first: int, on_batch=None) -> Partial:
        """The Partial of a shard: ``paths`` are its images, ``first`` the dataset index of the first;
        ``batch`` at a time; on_batch(images) after each batch."""
        if self._spatial_max is None:
            self._spatial_max = SpatialMax(self.net, self.layers)
        partial = Partial(shard, self.rankings(), np.zeros((0, self.channels), np.float32), np.zeros(0, np.int64), [])
        rows, images = [], []
        starts = list(range(0, len(paths), self.batch))
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(self._read, paths, starts[0], first)
            for number, start in enumerate(starts):
                batch, indices, skipped = pending.result()
                if number + 1 < len(starts):  # decode the next batch while this one runs
                    pending = reader.submit(self._read, paths, starts[number + 1], first)
                if batch is not None:
                    maxima = self._score(partial.rankings, batch, indices)
                    if self.stats:
                        rows.append(maxima)
                        images.extend(indices)
                partial.skipped.extend(skipped)
                if on_batch is not None:
                    on_batch(min(start + self.batch, len(paths)) - start)
        if rows:
            partial.rows, partial.images = np.concatenate(rows), np.asarray(images, np.int64)
        return partial

    def _read(self, paths: list, start: int, first: int) -> tuple:
        """(preprocessed batch or None, dataset indices read, indices skipped) of the batch at
        ``start`` in ``paths`` (dataset index ``first + start``)."""
        images, indices, skipped = [], [], []
        for index in range(start, min(start + self.batch, len(paths))):
            try:
                images.append(image_sources.read(paths[index]))
                indices.append(first + index)
            except DeepVisError:
                skipped.append(first + index)
        return (self.net.preprocess(images) if images else None), indices, skipped

    def _score(self, rankings: dict, batch: np.ndarray, indices: list) -> np.ndarray:
        """Offers one batch to the rankings; returns its channel maxima (images x channels)."""
        scores = self._spatial_max.run(batch)
        maxima = np.concatenate([scores[layer][0] for layer in self.layers], axis=1)
        indices = np.asarray(indices)
        for ranking in rankings.values():
            ranking.add(maxima, indices)
            self._place(ranking, scores, indices)
        return maxima

    def _place(self, ranking: TopK, scores: dict, indices: np.ndarray) -> None:
        """The positions of the entries this batch brought in (few once every channel holds k)."""
        # the batch's images span indices[0]..indices[-1]; the others in that span were skipped
        fresh = (ranking.image >= indices[0]) & (ranking.image <= indices[-1]) & self.map_channels[:, None]
        if not fresh.any():
            return
        for layer in self.maps:
            start, stop = self.spans[layer]
            here = fresh[start:stop]
            if here.any():
                channel, _ = np.nonzero(here)
                row = np.searchsorted(indices, ranking.image[start:stop][here])  # indices ascend
                _, rows, columns = scores[layer]
                ranking.y[start:stop][here], ranking.x[start:stop][here] = positions(rows[row, channel],
                                                                                     columns[row, channel])


class FindMaxes:
    """The pass itself: ``run()`` goes on from the last checkpoint under ``out``, writes maxes.json and
    returns its fields but the rankings (read those from the file).

    The image list is cut into shards of ``checkpoint_every`` batches (fewer when their channel
    maxima would pass ROWS_BUDGET); each shard gives a Partial (Scorer.shard), here one after the
    other or on Ray's workers (app.offline.on_ray), and the driver merges each one as it comes
    (``add``): it writes the shard's chunk of channel maxima, merges its top-k and records the shard
    as done. The result does not depend on where or in which order shards ran."""

    def __init__(self, net, paths: list, layers: list, out, labels=None, model=None, top: int = 9,
                 minima: bool = False, batch: int = 8, checkpoint_every: int = 20, stats: bool = True):
        if top < 1 or batch < 1 or checkpoint_every < 1:
            raise DeepVisError(f"{out}: --top, --batch and --checkpoint-every must be at least 1")
        self.net, self.paths, self.layers, self.out = net, list(paths), list(layers), Path(out)
        self.labels = labels if labels and any(label is not None for label in labels) else None
        self.model = model or net.spec.name
        self.scorer = Scorer(net, self.layers, top, minima, batch, stats)
        self.rankings = self.scorer.rankings()
        batches = checkpoint_every
        if stats:  # a shard's maxima, held until its chunk is written, stay within ROWS_BUDGET
            batches = min(batches, max(1, math.ceil(ROWS_BUDGET / (self.scorer.row_bytes * batch))))
        self.shard_images = batches * batch
        self.shards = [(start, min(start + self.shard_images, len(self.paths)))
                       for start in range(0, len(self.paths), self.shard_images)]
        settings = [self.model, self.paths, self.layers, top, minima, batch, self.shard_images, stats]
        self.signature = hashlib.sha256(json.dumps(settings).encode()).hexdigest()
        self.done, self.skipped, self.chunks = set(), [], []
        self._resume()

    # -- checkpoints ------------------------------------------------------------------------
    def _resume(self) -> None:
        path = self.out / STATE_FILE
        if not path.is_file():
            return
        try:
            arrays = read_npz(path)
            state = json.loads(str(arrays.pop("state")))
            if state["signature"] == self.signature:
                self.done, self.skipped, self.chunks = set(state["done"]), state["skipped"], state["chunks"]
                for key, ranking in self.rankings.items():
                    ranking.load(arrays, key)
        except (OSError, ValueError, KeyError) as error:
            raise DeepVisError(f"{path}: unreadable checkpoint ({error}); delete it to start over") from None
        if state["signature"] != self.signature:
            raise DeepVisError(f"{path}: made by a run with another model, other images, layers or options; "
                               "delete it (or choose another --out) to start over")

    def _checkpoint(self) -> None:
        arrays = {}
        for key, ranking in self.rankings.items():
            arrays.update(ranking.arrays(key))
        state = {"signature": self.signature, "done": sorted(self.done), "skipped": sorted(self.skipped),
                 "chunks": sorted(self.chunks)}
        write_npz_atomic(self.out / STATE_FILE, state=np.array(json.dumps(state)), **arrays)

    def _paths_of(self, shard: int) -> list:
        start, stop = self.shards[shard]
        return self.paths[start:stop]

    def todo(self) -> list:
        """Shards not done yet, in order."""
        return [shard for shard in range(len(self.shards)) if shard not in self.done]

    def add(self, partial: Partial) -> None:
        """Merge a shard's Partial: its chunk of channel maxima is written, its rankings merged and
        the shard recorded as done, in that order (a run killed in between does the shard again)."""
        if partial.shard in self.done:
            return
        if len(partial.images):
            name = f"chunk_{partial.shard:06d}.npz"
            rows = {f"l{i}": partial.rows[:, slice(*self.scorer.spans[layer])] for i, layer in enumerate(self.layers)}
            write_npz_atomic(self.out / CHUNK_DIR / name, image=partial.images, **rows)
            self.chunks.append(name)
        for key, ranking in self.rankings.items():
            ranking.merge(partial.rankings[key])
        self.skipped.extend(partial.skipped)
        self.done.add(partial.shard)
        self._checkpoint()

    def _settle_ties(self) -> None:
        """The column of each kept entry whose max several rows and several columns hold (a dead or
        clamped channel), from the layer itself: its image is read again and run through
        Net.forward, the brute force, one at a time (a run holds every tensor of its batch).
        Done once, at the end, for the entries kept."""
        spans, map_channels = self.scorer.spans, self.scorer.map_channels
        unsettled = {key: (ranking.x == UNKNOWN) & map_channels[:, None] for key, ranking in self.rankings.items()}
        images = np.unique(np.concatenate([self.rankings[key].image[open_] for key, open_ in unsettled.items()]))
        for image in images.tolist():
            values = self.net.forward([image_sources.read(self.paths[image])])
            for layer in self.scorer.maps:
                start, stop = spans[layer]
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

    def run(self, progress: bool = True, pool=None) -> dict:
        """Score every shard not yet done, here or, given a ``pool`` (app.offline.on_ray.Pool), on
        its workers; settle the open positions and write maxes.json."""
        done_images = sum(stop - start for shard, (start, stop) in enumerate(self.shards) if shard in self.done)
        todo = self.todo()
        with progress_bar(len(self.paths), "find_maxes", enabled=progress, initial=done_images) as bar:
            if pool is None:
                partials = (self.scorer.shard(self._paths_of(shard), shard, self.shards[shard][0], bar.update)
                            for shard in todo)
            else:
                tasks = [(self._paths_of(shard), shard, self.shards[shard][0]) for shard in todo]
                partials = (partial for _, partial in pool.map(Scorer, self.scorer.settings(), tasks, self.net))
            for partial in partials:
                self.add(partial)
                if pool is not None:
                    start, stop = self.shards[partial.shard]
                    bar.update(stop - start)
        if todo or not (self.out / MAXES_FILE).is_file():
            self._settle_ties()
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
        skipped = sorted(self.skipped)
        summary["skipped"] = [self.paths[index] for index in skipped]
        summary["skipped_count"] = len(skipped)
        if self.scorer.stats:
            summary["stats"] = {"folder": CHUNK_DIR, "chunks": sorted(self.chunks), "layers": self.layers,
                                "images": len(self.paths) - len(skipped)}
        return summary

    def result_text(self, summary: dict) -> str:
        """maxes.json's text: the summary, then "layers" (and "layers_min") with every channel's ranking."""
        vector = {layer: self.net.layer(layer).kind == "vector" for layer in self.layers}
        texts = [f'"{key}": {{' + ", ".join(f"{json.dumps(layer)}: "
                                             f"{ranking.part(*self.scorer.spans[layer]).json_text(vector[layer])}"
                                             for layer in self.layers) + "}"
                 for key, ranking in self.rankings.items()]
        return json.dumps(summary)[:-1] + ", " + ", ".join(texts) + "}"
