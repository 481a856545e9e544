"""Regularized activation maximization (Yosinski et al. 2015): an image that drives one unit high.

The image is optimized in the paper's space: pixels 0..255 in the net's channel order minus the
model's mean pixel (Caffe's raw mean-subtracted input). A model whose input is scaled differently
(e.g. x = (pixel - 127) / 128) gets its gradient carried through that scale, so the presets'
learning rates, decays and the N(0, 10) start mean the same thing on every model.
Many units are optimized together, one image per unit in one batch; each unit's start comes from its
own random stream (seed, unit), so a unit's result does not depend on which units share its batch.
"""
from dataclasses import asdict, dataclass

import numpy as np

from app.errors import DeepVisError
from app.files import write_image_atomic, write_json_atomic
from app.net.preprocess import mean_array
from app.offline import transforms
from app.offline.montage import write_sprite
from app.offline.progress import done_units, progress_bar
from app.offline.regularizers import PRESETS, Preset, learning_rates, regularize
from app.unit_images import montage_path, unit_dir


@dataclass
class Optimized:
    """The best image found for one unit."""

    unit: int
    image: np.ndarray        # H x W x 3 uint8 BGR: the image itself
    shown: np.ndarray        # the same, contrast stretched about the mean pixel for viewing
    activation: float        # the unit's value on ``image``
    step: int                # the step that produced it
    start_activation: float  # the unit's value on the random start


class PixelSpace:
    """Between the paper's space (pixels minus the mean pixel) and the net's input."""

    def __init__(self, net):
        spec = net.spec.input
        scale = np.asarray(spec.input_scale, np.float32)
        scale = scale.reshape(-1, 1, 1) if scale.ndim == 1 else scale
        self.gain = np.float32(spec.raw_scale / 255.0) * scale          # d(net input) / d(pixel)
        self.mean = np.broadcast_to(mean_array(spec) * np.float32(255.0 / spec.raw_scale),
                                    net.input_shape).astype(np.float32)

    def to_net(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x * self.gain, dtype=np.float32)

    def grad_from_net(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.gain

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Keep x + mean within the pixel range 0..255."""
        return np.clip(x + self.mean, 0.0, 255.0) - self.mean

    def stretched(self, x: np.ndarray) -> np.ndarray:
        """Each image scaled about the mean so the 99.5th percentile of its |x| spans half the pixel
        range (a few outlying pixels saturate): nets that answer to a few gray levels of change give
        images too faint to see as they are."""
        peak = np.percentile(np.abs(x).reshape(len(x), -1), 99.5, axis=1).reshape(-1, 1, 1, 1)
        return 127.5 * x / np.maximum(peak, 1e-12) + 127.5 - self.mean


def target_position(net, layer: str):
    """Where a unit is pushed: the spatial centre of a map, nothing for a vector."""
    info = net.layer(layer)
    if info.kind == "vector":
        return None
    if info.kind != "map":
        raise DeepVisError(f"{net.spec.name}: layer {layer}: shape {info.shape} is neither a map nor a vector")
    return tuple((size - 1) // 2 for size in info.shape[1:])


def start_images(space: PixelSpace, streams: list) -> np.ndarray:
    """N(0, 10) around the mean pixel, one image per random stream."""
    return np.stack([stream.normal(0.0, 10.0, space.mean.shape) for stream in streams]).astype(np.float32)


def objective_seed(value: np.ndarray, units, position) -> tuple:
    """The one-hot diff at (each image's own unit, position) and its index into the layer's value."""
    diff = np.zeros_like(value)
    index = (np.arange(len(units)), np.asarray(units)) + (tuple(np.full(len(units), p) for p in position)
                                                           if position else ())
    diff[index] = 1.0
    return diff, index


def optimize_units(net, layer: str, units, preset: Preset = PRESETS[3], seed: int = 0, iterations=None,
                   on_step=None) -> list:
    """Optimize one image per unit of ``layer``, all in one batch; returns an ``Optimized`` per unit.

    iterations: overrides the preset's count. on_step(step, best_images): called after every step
    (counted from 0); best_images() gives what this function would return if it stopped now; on_step
    returning False stops it there (anything else goes on), and the best images so far are returned.
    """
    units = [int(unit) for unit in units]
    channels = net.layer(layer).shape[0]
    if not units or not all(0 <= unit < channels for unit in units):
        raise DeepVisError(f"{net.spec.name}: layer {layer}: units {units} out of range 0-{channels - 1}")
    steps = preset.iterations if iterations is None else iterations
    if steps < 1:
        raise DeepVisError(f"{net.spec.name}: layer {layer}: {steps} iterations; at least 1 is needed")
    space, position = PixelSpace(net), target_position(net, layer)
    streams = [np.random.default_rng([seed, unit]) for unit in units]
    x = start_images(space, streams)
    best_value = np.full(len(units), -np.inf)
    best_x, best_step = x.copy(), np.zeros(len(units), int)
    start_value = None
    for step in range(steps):
        x = space.clip(x)
        warp = transforms.random_warps(preset, streams, x.shape[2:])
        run = net.forward(space.to_net(transforms.apply(x, warp)), up_to=layer)
        value = run[layer]
        diff, index = objective_seed(value, units, position)
        scores = value[index].astype(np.float64)
        start_value = scores if start_value is None else start_value
        better = scores > best_value
        best_value[better], best_x[better], best_step[better] = scores[better], x[better], step
        grad = transforms.apply_adjoint(space.grad_from_net(run.backward(layer, 0, mode="grad", seed=diff).input), warp)
        del run, value   # ONNX Runtime reuses their memory for the next step's forward
        x = regularize(x + learning_rates(preset, grad).astype(np.float32) * grad, grad, preset, step)
        if on_step and on_step(step, lambda: _results(net, space, units, best_x, best_value, best_step,
                                                       start_value)) is False:
            break
    return _results(net, space, units, best_x, best_value, best_step, start_value)


def _results(net, space: PixelSpace, units: list, best_x, best_value, best_step, start_value) -> list:
    images, shown = net.deprocess(space.to_net(best_x)), net.deprocess(space.to_net(space.stretched(best_x)))
    return [Optimized(*fields) for fields in zip(units, images, shown, best_value.tolist(), best_step.tolist(),
                                                 start_value.tolist())]


def parse_units(text: str, channels: int, where: str) -> list:
    """"all", "7", "0-63" or "1,5,9-12" -> sorted unit numbers, checked against the layer's size."""
    if text in ("all", "", None):
        return list(range(channels))
    units = set()
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            units.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise DeepVisError(f"{where}: units {text!r}: give 'all', N, A-B or a comma list of them") from None
    if not units or min(units) < 0 or max(units) >= channels:
        raise DeepVisError(f"{where}: units {text!r} out of range: the layer has {channels} units (0-{channels - 1})")
    return sorted(units)


def optimize_layer(net, layer: str, units, root, preset: int = 3, seed: int = 0, batch: int = 32,
                   iterations=None, sprite_tile: int = 96, progress: bool = True) -> list:
    """Optimize ``units`` of ``layer`` ``batch`` at a time, skipping units already done under ``root``;
    writes each unit's opt.png and opt.json and the layer's sprite_opt.png. Returns the units run now."""
    if preset not in PRESETS:
        raise DeepVisError(f"{net.spec.name}: preset {preset}: choose one of {', '.join(map(str, PRESETS))}")
    settings = PRESETS[preset]
    steps = settings.iterations if iterations is None else iterations
    done = done_units(root, layer, units, "opt.json")
    todo = [unit for unit in units if unit not in done]
    with progress_bar(len(todo) * steps, f"{layer} opt", unit="step", enabled=progress) as bar:
        for start in range(0, len(todo), batch):
            group = todo[start:start + batch]
            for result in optimize_units(net, layer, group, settings, seed, steps,
                                         lambda step, best_images: bar.update(len(group))):
                write_unit(net, root, layer, result, preset, seed, steps)
    write_sprite(root, layer, "opt", net.layer(layer).shape[0], sprite_tile)
    return todo


def write_unit(net, root, layer: str, result: Optimized, preset: int, seed: int, iterations: int) -> None:
    """Write one unit's opt.png, opt_raw.png and opt.json under ``root``, as optimize_layer does."""
    _write_result(root, layer, result, dict(preset=preset, iterations=iterations, seed=seed,
                                            position=target_position(net, layer), model=net.spec.name))


def _write_result(root, layer: str, result: Optimized, run: dict) -> None:
    write_image_atomic(montage_path(root, layer, result.unit, "opt"), result.shown)
    write_image_atomic(unit_dir(root, layer, result.unit) / "opt_raw.png", result.image)
    record = {key: value for key, value in asdict(result).items() if key not in ("image", "shown")}
    record.update(layer=layer, preset_settings=asdict(PRESETS[run["preset"]]), **run)
    write_json_atomic(unit_dir(root, layer, result.unit) / "opt.json", record, indent=1)
