"""What the layers pane shows with no pattern mode: every unit's map of the selected layer, the
forward activations or (key a) the backward diffs, for the images shown (one, or a siamese pair).

Both read the newest snapshot, so the layers pane computes them as it draws: selecting another
layer shows its maps at once, without a new forward or backward run.
"""
from typing import Optional

import numpy as np

from app.views import registry
from app.views.registry import Message, UnitMaps, shows

ZERO_DIFFS = "diffs all zero: nothing flows back to this layer (the origin unit is not active?)"


def as_maps(value: np.ndarray) -> np.ndarray:
    """One sample's layer output as C x H x W: maps as they are, anything else one 1 x 1 unit per value."""
    value = np.asarray(value, np.float32)
    return value if value.ndim == 3 else value.reshape(-1, 1, 1)


def finite(maps: tuple, signed: bool = False) -> tuple:
    """(the maps with every NaN and Inf replaced, a note counting them, or "").

    Activations: NaN and -Inf become the lowest finite value, +Inf the highest, so the tiles keep
    their scale and the note says what was there; signed diffs: NaN becomes 0. Nothing divides by
    a range that a NaN or an Inf made meaningless."""
    counts = [(int(np.isnan(m).sum()), int(np.isposinf(m).sum()), int(np.isneginf(m).sum())) for m in maps]
    nan, positive, negative = (sum(column) for column in zip(*counts))
    if not nan + positive + negative:
        return maps, ""
    values = np.concatenate([m[np.isfinite(m)] for m in maps])
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    fixed = tuple(np.nan_to_num(m, nan=0.0 if signed else low, posinf=high, neginf=low) for m in maps)
    where = "at 0" if signed else "as the lowest finite value"
    total = sum(m.size for m in maps)
    return fixed, (f"{nan} NaN, {positive} +Inf, {negative} -Inf of {total} values (NaN drawn {where}, "
                   "Inf as the highest / lowest)")


def _maps(per_image, layer: str) -> Optional[tuple]:
    """The layer's maps of each image shown, up to the first image without them (None: not even the first)."""
    maps = []
    for values in per_image:
        value = None if values is None else values.get(layer)
        if value is None:
            break
        maps.append(as_maps(value))
    return tuple(maps) or None


@shows("activations", "layers", place=0, diffs=False, tag="fwd")
def activations(layer: str, shown_activations):
    """The forward activations of ``layer``, coloured with the pane's boosts and colormap."""
    maps = _maps(shown_activations, layer)
    if maps is None:
        return None
    maps, note = finite(maps)
    return UnitMaps(maps, note=note)


@shows("diffs", "layers", place=1, diffs=True, tag="back")
def diffs(layer: str, shown_diffs, back_method, back_current):
    """The back pane's method's diffs at ``layer``, red negative and green positive on one scale."""
    if back_method is None:
        return Message("no diffs: turn backprop on (b)")
    if "layer_diffs" not in registry.entry("back", back_method).inputs:
        return Message(f"no diffs: {back_method} has no layer diffs (a: activations)")
    maps = None if shown_diffs is None else _maps(shown_diffs, layer)
    if maps is None:
        if shown_diffs is not None and back_current:
            return Message("no diffs here: this layer is above the backprop origin (nothing flows back into it)")
        return None   # the backward pass asked for is still running
    maps, note = finite(maps, signed=True)
    return UnitMaps(maps, signed=True, note=note or ("" if any(np.any(one) for one in maps) else ZERO_DIFFS))
