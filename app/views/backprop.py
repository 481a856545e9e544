"""The back pane's backward passes: the plain gradient, Zeiler and Fergus's deconv, guided backprop
and DeSaliNet (app/net/autodiff/modes.py), from a unit to the input, as input maps.

The pass starts from the unit's own activation below the layer's rectifier, as the original's did
below Caffe's in-place ReLU: a unit saturated at a ReLU6's 6 still shows what drove it.
"""
import numpy as np

from app.errors import DeepVisError
from app.net.preprocess import image_layout
from app.views.registry import InputMap, Message, shows

MODES = ("grad", "deconv", "guided", "desalinet")


def to_image_layout(net, diff: np.ndarray) -> np.ndarray:
    """A C x H x W input diff as H x W x 3 in the image's BGR order (undoing swap and transpose)."""
    spec = net.spec.input
    return image_layout(diff, spec.channel_swap, spec.transpose).astype(np.float32, copy=False)


def zero_note(origin, how: str = "backprop") -> str:
    """What the back pane says instead of drawing an all-zero map of ``how``."""
    return (f"{how} from {origin[0]}:{origin[1]} gives all zeros at the input "
            "(the unit is off on this image, or the rectifiers on the way block it, e.g. ReLU6 units at 6)")


def input_maps(net, input_diff: np.ndarray, origin, diffs=None, how: str = "backprop", fallback: str = "") -> list:
    """One InputMap per sample of an N x C x H x W input diff (with each sample's layer diffs);
    fallback: why the NumPy walk ran instead of the graph."""
    maps = []
    for sample in range(len(input_diff)):
        values = to_image_layout(net, input_diff[sample])
        layers = {name: value[sample] for name, value in diffs.items()} if diffs is not None else None
        maps.append(InputMap(values, layers, _non_finite_note(values, origin, how)
                             or ("" if np.any(values) else zero_note(origin, how)), fallback))
    return maps


def _non_finite_note(values: np.ndarray, origin, how: str) -> str:
    """What the back pane says instead of drawing diffs that hold NaN or Inf (no scale fits them)."""
    bad = int(values.size - np.isfinite(values).sum())
    if not bad:
        return ""
    return (f"{how} from {origin[0]}:{origin[1]}: {bad} of {values.size} values at the input are NaN or "
            "Inf (activations on the way hold NaN or Inf: see the layers pane)")


def _method(mode: str):
    def backward_pass(run, origin: tuple, layer_diffs: bool) -> list:
        try:
            result = run.backward(origin[0], origin[1], mode=mode, seed="activation", layer_diffs=layer_diffs,
                                  seed_through_rectifier=True)
        except DeepVisError as error:
            return [Message(f"no backprop: {error}")] * len(run.input)
        return input_maps(run.net, result.input, origin, result.layers if layer_diffs else None,
                          fallback=result.fallback)
    backward_pass.__doc__ = f"The {mode} backward pass from ``origin`` to the input of every image of ``run``."
    return backward_pass


for _place, _mode in enumerate(MODES):
    shows(_mode, "back", place=10 + _place)(_method(_mode))
