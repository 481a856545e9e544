"""What an optimized image maximizes: a channel, a neuron, a class, a direction, or a weighted sum.

Written as text (``tools.optimize_image --objective``):
    LAYER:N            channel N of LAYER: the mean of its map (a vector layer: unit N itself)
    LAYER:N@Y,X        the neuron of channel N at row Y, column X;  LAYER:N@center: the map's centre
    class:N            class N before the softmax (the net's logits layer)
    LAYER:FILE.npy     a direction: the vector in FILE (one weight per channel) dotted with the
                       channels at each position, averaged over positions
    W*TERM + W*TERM    a weighted sum, e.g. "blocks.3.0.dw:5 + 0.5*blocks.3.0.dw:7" (W may be negative)
A layer name may itself hold ':' (the last one separates the unit).
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.errors import DeepVisError


@dataclass(frozen=True)
class Term:
    layer: str
    unit: int = None                   # the channel; None for a direction
    position: tuple = None             # a neuron's (row, column); None: the channel's mean
    direction: np.ndarray = field(default=None, compare=False)
    weight: float = 1.0


def centre(net, layer: str) -> tuple:
    """The spatial centre of a map layer's positions; nothing for a vector layer."""
    info = net.layer(layer)
    return tuple((size - 1) // 2 for size in info.shape[1:]) if info.kind == "map" else None


def unit_terms(net, layer: str, unit: int, kind: str) -> tuple:
    """One unit's objective: kind "channel" (its map's mean) or "neuron" (its centre)."""
    if kind not in ("channel", "neuron"):
        raise DeepVisError(f"{net.spec.name}: objective {kind!r}: choose channel, neuron or a written objective")
    return (Term(layer, int(unit), centre(net, layer) if kind == "neuron" else None),)


def _check(net, term: Term, text: str) -> Term:
    info = net.layer(term.layer)   # one line naming the layer when there is none
    channels = info.shape[0]
    if term.unit is not None and not 0 <= term.unit < channels:
        raise DeepVisError(f"{net.spec.name}: objective {text!r}: unit {term.unit} out of range 0-{channels - 1}")
    if term.direction is not None and term.direction.shape != (channels,):
        raise DeepVisError(f"{net.spec.name}: objective {text!r}: the direction has shape "
                           f"{term.direction.shape}; layer {term.layer} has {channels} channels")
    if term.position is not None and (info.kind != "map" or not all(
            0 <= p < size for p, size in zip(term.position, info.shape[1:])) or len(term.position) != 2):
        raise DeepVisError(f"{net.spec.name}: objective {text!r}: position {term.position} is not in "
                           f"layer {term.layer}'s map {info.shape[1:]}")
    return term


def _term(net, text: str) -> Term:
    weight, star, target = text.strip().rpartition("*") if "*" in text else ("1", "", text.strip())
    layer, colon, what = target.strip().rpartition(":")
    try:
        weight = float(weight)
        if not colon or not layer or not what:
            raise ValueError
        if layer == "class":
            logits = net.logits_layer()
            if logits is None:
                raise DeepVisError(f"{net.spec.name}: objective {text.strip()!r}: the net has no class output")
            return _check(net, Term(logits, int(what), weight=weight), text)
        if what.endswith(".npy"):
            if not Path(what).is_file():
                raise DeepVisError(f"{what}: no such direction file (objective {text.strip()!r})")
            direction = np.load(what).astype(np.float32).ravel()
            return _check(net, Term(layer, direction=direction, weight=weight), text)
        unit, at, place = what.partition("@")
        position = None
        if at:
            position = centre(net, layer) if place == "center" else tuple(int(p) for p in place.split(","))
        return _check(net, Term(layer, int(unit), position, weight=weight), text)
    except ValueError:
        raise DeepVisError(f"{net.spec.name}: objective {text.strip()!r}: write LAYER:N, LAYER:N@Y,X, class:N, "
                           f"LAYER:FILE.npy, or W*TERM + ... (docs/offline_images.md)") from None


def parse(net, text: str) -> tuple:
    """A written objective -> its terms."""
    return tuple(_term(net, part) for part in text.split("+"))


def layers_of(objectives) -> list:
    return sorted({term.layer for terms in objectives for term in terms})


def scores(objectives, values: dict, views: int) -> np.ndarray:
    """Each image's objective on ``values`` (layer -> value), averaged over its ``views`` rows (row r
    shows image r // views)."""
    found = np.zeros(len(objectives))
    for image, terms in enumerate(objectives):
        rows = slice(image * views, (image + 1) * views)
        for term in terms:
            value = values[term.layer][rows]
            if term.direction is not None:
                weights = term.direction.reshape((-1,) + (1,) * (value.ndim - 2))
                found[image] += term.weight * (value * weights).sum(axis=1).mean()
            elif term.position is not None:
                found[image] += term.weight * value[(slice(None), term.unit) + tuple(term.position)].mean()
            else:
                found[image] += term.weight * value[:, term.unit].mean()
    return found


def seeds(objectives, shapes: dict, views: int) -> dict:
    """Per layer, the gradient of the sum of the scores with respect to its value (``shapes``: layer ->
    the value's shape, batch axis first). Every objective is linear in the activations, so the
    gradient is the same whatever the values: made once, it seeds every step's backward pass."""
    found = {layer: np.zeros(shapes[layer], np.float32) for layer in layers_of(objectives)}
    for image, terms in enumerate(objectives):
        rows = slice(image * views, (image + 1) * views)
        for term in terms:
            seed = found[term.layer][rows]
            spread = int(np.prod(seed.shape[2:]))   # positions of a map, 1 for a vector
            if term.direction is not None:
                weights = term.direction.reshape((-1,) + (1,) * (seed.ndim - 2))
                seed += term.weight * np.broadcast_to(weights, seed.shape[1:]) / (spread * views)
            elif term.position is not None:
                seed[(slice(None), term.unit) + tuple(term.position)] += term.weight / views
            else:
                seed[:, term.unit] += term.weight / (spread * views)
    return found
