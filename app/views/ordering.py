"""Channel orders for the layers pane: k-means clusters or the first principal component of the
channels' activations, for the current input or over a dataset.

Each channel is a point: its activation map flattened (current input) or its maxima over the
dataset's images (find_maxes's statistics, read by app/views/dataset_order.py). An order is a
permutation; ``ChannelOrder`` maps a tile's display position to the real unit and back, so
selection keeps addressing real units.
"""
import math
from dataclasses import dataclass

import numpy as np

from app.errors import DeepVisError

MODES = ("original", "kmeans", "pca")


@dataclass(frozen=True)
class ChannelOrder:
    """``units[position]`` is the real unit shown at display position ``position``."""

    units: tuple

    @classmethod
    def identity(cls, count: int) -> "ChannelOrder":
        return cls(tuple(range(count)))

    def unit_at(self, position: int) -> int:
        return self.units[position]

    def position_of(self, unit: int) -> int:
        return self.units.index(unit)

    def arrange(self, tiles):
        """Per-unit items (array or list, unit order) in display order."""
        return tiles[list(self.units)] if isinstance(tiles, np.ndarray) else [tiles[u] for u in self.units]


def activation_features(activation: np.ndarray) -> np.ndarray:
    """One sample's activation (C x H x W, C, or C x ...) -> C x D points, one per channel."""
    activation = np.asarray(activation, dtype=np.float64)
    return activation.reshape(len(activation), -1)


def gram_features(gram: np.ndarray) -> np.ndarray:
    """C x C points with the lengths and distances of the channels whose Gram matrix (C x C, the
    products of their vectors) is ``gram``.

    Every order here needs only the channels' lengths, distances and means, which an isometry
    keeps; so a dataset's N x C channel maxima X can be summed chunk by chunk into X^T X and
    ordered from that, in C x C memory whatever N is."""
    gram = np.asarray(gram, dtype=np.float64)
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise DeepVisError(f"channel statistics must be a channels x channels Gram matrix, got shape {gram.shape}")
    values, vectors = np.linalg.eigh((gram + gram.T) / 2)
    points = vectors * np.sqrt(np.maximum(values, 0.0))
    points[np.diag(gram) <= 0] = 0.0   # a dead channel stays exactly zero, not rounding noise
    return points


def _unit_rows(features: np.ndarray) -> np.ndarray:
    """Each channel scaled to unit length: channels group by the pattern of their activity, not its size."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)


def first_component_scores(features: np.ndarray) -> np.ndarray:
    """Each channel's coordinate along the first principal component of the channels (sign fixed:
    the channel farthest along it scores positive)."""
    centred = features - features.mean(axis=0)
    if not centred.any():
        return np.zeros(len(features))
    if len(centred) <= centred.shape[1]:
        # few channels, long vectors: the top eigenvector of the channels' Gram matrix, scaled by
        # its singular value, is the projection itself (cheaper than an SVD of C x D)
        values, vectors = np.linalg.eigh(centred @ centred.T)
        scores = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
    else:
        scores = centred @ np.linalg.eigh(centred.T @ centred)[1][:, -1]
    return scores if scores[np.argmax(np.abs(scores))] > 0 else -scores


def _settled(values: np.ndarray) -> np.ndarray:
    """Distances and sort keys rounded past float noise, so that ties (duplicate or dead channels,
    the two members of a cluster equally far from its centre) go the same way (to the lower unit)
    however the values were computed."""
    return np.round(values, 9)


def pca_order(features: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Channels sorted along the first principal component (ties keep unit order)."""
    points = _unit_rows(features) if normalise else np.asarray(features, np.float64)
    return np.argsort(_settled(first_component_scores(points)), kind="stable")


def kmeans(points: np.ndarray, clusters: int, seed: int = 0, iterations: int = 100) -> tuple:
    """Lloyd's k-means with k-means++ seeding from ``seed``: (labels, centroids). Deterministic."""
    rng = np.random.default_rng(seed)
    clusters = max(1, min(clusters, len(points)))
    centroids = [points[rng.integers(len(points))]]
    for _ in range(clusters - 1):
        distances = _squared_distances(points, np.array(centroids)).min(axis=1)
        total = distances.sum()
        pick = rng.choice(len(points), p=distances / total) if total > 0 else rng.integers(len(points))
        centroids.append(points[pick])
    centroids = np.array(centroids)
    labels = None
    for _ in range(iterations):
        new_labels = _squared_distances(points, centroids).argmin(axis=1)
        if labels is not None and (new_labels == labels).all():
            break
        labels = new_labels
        for k in range(clusters):
            members = points[labels == k]
            if len(members):
                centroids[k] = members.mean(axis=0)
    return labels, centroids


def _squared_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    squared = (points ** 2).sum(axis=1)[:, None] - 2 * points @ centroids.T + (centroids ** 2).sum(axis=1)[None]
    return _settled(np.maximum(squared, 0.0))


def default_clusters(count: int) -> int:
    """sqrt(C / 2) clusters, the usual rule of thumb: 8 for 128 channels."""
    return max(1, round(math.sqrt(count / 2)))


def kmeans_order(features: np.ndarray, clusters: int = None, seed: int = 0, normalise: bool = True) -> np.ndarray:
    """Channels grouped by k-means cluster: biggest cluster first, and within a cluster the channels
    nearest its centre first (ties keep unit order)."""
    points = _unit_rows(features) if normalise else np.asarray(features, np.float64)
    labels, centroids = kmeans(points, clusters or default_clusters(len(points)), seed)
    sizes = np.bincount(labels, minlength=len(centroids))
    distance = _settled(((points - centroids[labels]) ** 2).sum(axis=1))
    # lexsort: last key is primary -> cluster size (desc), cluster id, distance to centre, unit
    return np.lexsort((np.arange(len(points)), distance, labels, -sizes[labels]))


def channel_order(mode: str, features: np.ndarray, clusters: int = None, seed: int = 0) -> ChannelOrder:
    """The order of ``mode`` (one of MODES) for C x D channel ``features`` ("original" only counts them)."""
    if mode not in MODES:
        raise DeepVisError(f"channel order {mode!r}: use one of {', '.join(MODES)}")
    features = np.asarray(features, dtype=np.float64)
    if mode == "original":
        return ChannelOrder.identity(len(features))
    permutation = pca_order(features) if mode == "pca" else kmeans_order(features, clusters, seed)
    return ChannelOrder(tuple(int(u) for u in permutation))
