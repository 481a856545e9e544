"""Where a backward pass starts: the diff placed at the chosen layer.

- "activation": the unit's own forward activation (its whole map), zero elsewhere (the live view);
- "onehot": 1 at one position of the unit, by default each image's own argmax of that unit;
- an array: the caller's diff, shaped like the layer with or without the batch axis.
A unit is an index along axis 1 (the channel of a map, the element of a vector).
"""
import numpy as np

from app.errors import DeepVisError


def make_seed(value: np.ndarray, unit, seed, at, where: str) -> np.ndarray:
    """The seed diff for a layer whose forward value (with batch axis) is ``value``."""
    if isinstance(seed, str):
        if at is not None and seed != "onehot":
            raise DeepVisError(f"{where}: at={at!r} applies to seed='onehot' only, not seed={seed!r}")
        if seed == "activation":
            return _activation(value, _checked_unit(value, unit, where))
        if seed == "onehot":
            return _onehot(value, _checked_unit(value, unit, where), at, where)
        raise DeepVisError(f"{where}: unknown seed {seed!r}; use 'activation', 'onehot' or a diff array")
    diff = np.asarray(seed, dtype=value.dtype)
    if diff.shape == value.shape[1:]:
        return np.broadcast_to(diff, value.shape)
    if diff.shape != value.shape:
        raise DeepVisError(f"{where}: seed array has shape {diff.shape}; the layer is {value.shape} "
                           f"(or {value.shape[1:]} for every image)")
    return diff


def _checked_unit(value: np.ndarray, unit, where: str) -> int:
    channels = value.shape[1] if value.ndim > 1 else 1
    if not isinstance(unit, (int, np.integer)) or not 0 <= unit < channels:
        raise DeepVisError(f"{where}: unit {unit!r} out of range: the layer has {channels} units")
    return int(unit)


def _activation(value: np.ndarray, unit: int) -> np.ndarray:
    diff = np.zeros_like(value)
    if value.ndim == 1:
        return value.copy()
    diff[:, unit] = value[:, unit]
    return diff


def _onehot(value: np.ndarray, unit: int, at, where: str) -> np.ndarray:
    diff = np.zeros_like(value)
    if value.ndim == 1:
        diff[:] = 1
        return diff
    plane = value[:, unit].reshape(value.shape[0], -1)
    if at is None:
        positions = plane.argmax(axis=1)
    else:
        at = tuple(int(a) for a in np.atleast_1d(at))
        spatial = value.shape[2:]
        if len(at) != len(spatial) or not all(0 <= a < n for a, n in zip(at, spatial)):
            raise DeepVisError(f"{where}: position at={at} is outside the unit's {spatial} map")
        positions = np.full(value.shape[0], np.ravel_multi_index(at, spatial) if spatial else 0)
    flat = diff.reshape(value.shape[0], value.shape[1], -1)
    flat[np.arange(value.shape[0]), unit, positions] = 1
    return diff
