"""Regularized activation maximization (Yosinski et al. 2015): an image that drives one unit high.

The image is optimized in the paper's space: pixels 0..255 in the net's channel order minus the
model's mean pixel (Caffe's raw mean-subtracted input). A model whose input is scaled differently
(e.g. x = (pixel - 127) / 128) gets its gradient carried through that scale, so the presets'
learning rates, decays and the N(0, 10) start mean the same thing on every model.
Many units are optimized together, one image per unit in one batch; each unit's start comes from its
own random stream (seed, unit), so a unit's result does not depend on which units share its batch.
The presets lucid and maco optimize a parameterized image instead (app/offline/render.py); this
module runs either and writes what the app reads.
"""
import json
from dataclasses import asdict, dataclass

import numpy as np

from app.errors import DeepVisError
from app.files import write_image_atomic, write_json_atomic
from app.net.preprocess import mean_array
from app.offline import objectives, render, transforms
from app.offline.montage import grid, write_sprite
from app.offline.objective_gradient import objective_gradient
from app.offline.progress import done_units, progress_bar
from app.offline.regularizers import PRESETS, Preset, learning_rates, regularize
from app.offline.render import RECIPES, Recipe
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
    transparency: np.ndarray = None  # lucid, maco: accumulated |gradient| wrt the image (H x W)


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


def start_images(space: PixelSpace, streams: list) -> np.ndarray:
    """N(0, 10) around the mean pixel, one image per random stream."""
    return np.stack([stream.normal(0.0, 10.0, space.mean.shape) for stream in streams]).astype(np.float32)


def check_units(net, layer: str, units) -> list:
    units = [int(unit) for unit in units]
    channels = net.layer(layer).shape[0]
    if not units or not all(0 <= unit < channels for unit in units):
        raise DeepVisError(f"{net.spec.name}: layer {layer}: units {units} out of range 0-{channels - 1}")
    return units


def optimize_units(net, layer: str, units, preset: Preset = PRESETS[3], seed: int = 0, iterations=None,
                   on_step=None, objective: str = "neuron") -> list:
    """Optimize one image per unit of ``layer``, all in one batch, in the paper's pixel space;
    returns an ``Optimized`` per unit.

    iterations: overrides the preset's count. objective: "neuron" (the centre, as the paper) or
    "channel" (app/offline/objectives.py). on_step(step, glimpse): called after every step;
    glimpse() gives (picture, value) per unit, its best image so far as opt.png shows it (built only
    when asked: a caller showing progress every few steps does not pay for the others); on_step
    returning False stops the run there.
    """
    units = check_units(net, layer, units)
    steps = preset.iterations if iterations is None else iterations
    if steps < 1:
        raise DeepVisError(f"{net.spec.name}: layer {layer}: {steps} iterations; at least 1 is needed")
    space = PixelSpace(net)
    targets = [objectives.unit_terms(net, layer, unit, objective) for unit in units]
    streams = [np.random.default_rng([seed, unit]) for unit in units]
    x = start_images(space, streams)
    best_value = np.full(len(units), -np.inf)
    best_x, best_step = x.copy(), np.zeros(len(units), int)
    start_value = None
    for step in range(steps):
        x = space.clip(x)
        warp = transforms.random_warps(preset, streams, x.shape[2:])
        scores, grad = objective_gradient(net, space.to_net(transforms.apply(x, warp)), targets)
        start_value = scores if start_value is None else start_value
        better = scores > best_value
        best_value[better], best_x[better], best_step[better] = scores[better], x[better], step
        grad = transforms.apply_adjoint(space.grad_from_net(grad), warp)
        x = regularize(x + learning_rates(preset, grad).astype(np.float32) * grad, grad, preset, step)
        if on_step and on_step(step, lambda: list(zip(net.deprocess(space.to_net(space.stretched(best_x))),
                                                      best_value.tolist()))) is False:
            break
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


def preset_named(name):
    """A preset by its name: 1-5 (the paper's pixel space; 5 adds transforms) or lucid, maco."""
    key = int(name) if str(name).isdigit() else str(name)
    if key not in PRESETS and key not in RECIPES:
        raise DeepVisError(f"preset {name}: choose one of {', '.join(PRESET_NAMES)}")
    return key, PRESETS.get(key) or RECIPES[key]


PRESET_NAMES = [str(key) for key in PRESETS] + list(RECIPES)


def render_units(net, layer: str, units, recipe: Recipe, seed: int = 0, iterations=None, objective: str = None,
                 size: tuple = None, copies: int = 1, diversity_weight: float = 10.0, on_step=None) -> list:
    """Optimize ``copies`` images per unit of ``layer`` with a Lucid or MACO preset (app/offline/render.py),
    all in one batch; returns an ``Optimized`` per unit (its copies as one montage when several)."""
    units = check_units(net, layer, units)
    kind = objective or recipe.objective
    targets = [objectives.unit_terms(net, layer, unit, kind) for unit in units for _ in range(copies)]
    streams = [np.random.default_rng([seed, unit] + ([copy] if copies > 1 else []))
               for unit in units for copy in range(copies)]
    groups = [list(range(index * copies, (index + 1) * copies)) for index in range(len(units))] if copies > 1 else None
    results = render.render(net, targets, recipe, streams, iterations, size, groups, diversity_weight, on_step)
    steps = recipe.iterations if iterations is None else iterations
    optimized = []
    for index, unit in enumerate(units):
        mine = results[index * copies:(index + 1) * copies]
        image = mine[0].image if copies == 1 else grid([r.image for r in mine], columns=copies)
        optimized.append(Optimized(unit, image, image, float(np.mean([r.activation for r in mine])), steps - 1,
                                   float(np.mean([r.start_activation for r in mine])),
                                   transparency=sum(r.transparency for r in mine)))
    return optimized


def optimize_layer(net, layer: str, units, root, preset=3, seed: int = 0, batch: int = 32, iterations=None,
                   sprite_tile: int = 96, progress: bool = True, objective: str = None, size: tuple = None,
                   copies: int = 1, diversity_weight: float = 10.0, on_step=None, pool=None) -> list:
    """Optimize ``units`` of ``layer`` ``batch`` at a time, skipping units already done under ``root``;
    writes each unit's opt.png and opt.json and the layer's sprite_opt.png. Returns the units run now.

    preset: 1-5 or "lucid", "maco". objective: "neuron" or "channel" (default: the paper's neuron for
    1-5, the channel for lucid and maco). size, copies (diversity): lucid and maco only; for them
    ``batch`` counts views through the net (a maco unit alone is 32: 8 units at once ran out of memory).
    on_step(step, glimpse): as optimize_units; returning False stops the run (nothing is written).
    pool: an app.offline.on_ray.Pool whose actors optimize the groups (on_step is not called then)."""
    key, settings = preset_named(preset)
    check_options(net, key, settings, size, copies)   # before the folder is compared: the options' own error
    steps = settings.iterations if iterations is None else iterations
    if not isinstance(settings, Preset):   # batch counts the images through the net: maco's crops too
        batch = max(1, batch // (settings.crops * copies))
    options = dict(preset=key, seed=seed, iterations=steps, objective=objective, size=size, copies=copies)
    made = json.loads(json.dumps(run_record(net, layer, **options)))   # as opt.json holds it

    def differs(unit: int, record: dict):
        changed = [field for field in made if record.get(field) != made[field]]
        return ", ".join(f"{field} {record.get(field)!r}, this run's {made[field]!r}" if field != "preset_settings"
                         else "other preset settings" for field in changed) or None
    done = done_units(root, layer, units, "opt.json", differs)
    todo = [unit for unit in units if unit not in done]
    groups = [todo[start:start + batch] for start in range(0, len(todo), batch)]
    if pool is not None:
        with progress_bar(len(todo), f"{layer} opt", unit="unit", enabled=progress) as bar:
            job = {"layer": layer, "diversity_weight": diversity_weight, **options}
            for index, results in pool.map(group_optimizer, job, groups, net):
                write_results(net, root, layer, results, **options)
                bar.update(len(groups[index]))
        write_sprite(root, layer, "opt", net.layer(layer).shape[0], sprite_tile)
        return todo
    stopped = False
    with progress_bar(len(todo) * steps, f"{layer} opt", unit="step", enabled=progress) as bar:
        for start, group in zip(range(0, len(todo), batch), groups):

            def step_done(step, glimpse):
                nonlocal stopped
                bar.update(len(group))
                stopped = on_step is not None and on_step(step, glimpse) is False
                return not stopped

            results = optimize_group(net, layer, group, key, seed, steps, objective, size, copies,
                                     diversity_weight, step_done)
            if stopped:
                return todo[:start]
            write_results(net, root, layer, results, **options)
    write_sprite(root, layer, "opt", net.layer(layer).shape[0], sprite_tile)
    return todo


def group_optimizer(net, layer: str, **options):
    """units -> an ``Optimized`` per unit (optimize_group with ``options``): what a Ray actor runs."""
    return lambda units: optimize_group(net, layer, units, **options)


def optimize_group(net, layer: str, units, preset=3, seed: int = 0, iterations=None, objective: str = None,
                   size: tuple = None, copies: int = 1, diversity_weight: float = 10.0, on_step=None) -> list:
    """An ``Optimized`` per unit of ``units``, all in one batch, with ``preset`` (1-5, "lucid", "maco");
    the arguments as optimize_layer's."""
    key, settings = preset_named(preset)
    check_options(net, key, settings, size, copies)
    if isinstance(settings, Preset):
        return optimize_units(net, layer, units, settings, seed, iterations, on_step, objective or "neuron")
    return render_units(net, layer, units, settings, seed, iterations, objective or settings.objective, size,
                        copies, diversity_weight, on_step)


def check_options(net, key, settings, size: tuple, copies: int) -> None:
    """The paper's presets work in the net's input space: no other size, no diversity."""
    if isinstance(settings, Preset) and (size or copies > 1):
        raise DeepVisError(f"{net.spec.name}: preset {key}: works in the net's input space; "
                           "size and diversity need preset lucid or maco")


def write_results(net, root, layer: str, results: list, preset=3, seed: int = 0, iterations=None,
                  objective: str = None, size: tuple = None, copies: int = 1) -> None:
    """Write each result's opt.png, opt_raw.png (opt_transparency.png) and opt.json under ``root``,
    recording how it was made (the arguments optimize_group took)."""
    record = run_record(net, layer, preset, seed, iterations, objective, size, copies)
    for result in results:
        _write_result(root, layer, result, record)


def run_record(net, layer: str, preset=3, seed: int = 0, iterations=None, objective: str = None,
               size: tuple = None, copies: int = 1) -> dict:
    """How a unit's image was made, as opt.json records it (the arguments optimize_group took)."""
    key, settings = preset_named(preset)
    kind = objective or ("neuron" if isinstance(settings, Preset) else settings.objective)
    record = dict(preset=key, objective=kind, iterations=settings.iterations if iterations is None else iterations,
                  seed=seed, position=objectives.centre(net, layer) if kind == "neuron" else None,
                  model=net.spec.name, preset_settings=asdict(settings))
    if not isinstance(settings, Preset):
        record.update(size=list(size or (settings.size, settings.size)), diversity=copies)
    return record


def _write_result(root, layer: str, result: Optimized, run: dict) -> None:
    folder = unit_dir(root, layer, result.unit)
    write_image_atomic(montage_path(root, layer, result.unit, "opt"), result.shown)
    write_image_atomic(folder / "opt_raw.png", result.image)
    if result.transparency is not None:
        peak = max(float(result.transparency.max()), 1e-12)
        write_image_atomic(folder / "opt_transparency.png", np.uint8(np.round(255 * result.transparency / peak)))
    record = {key: value for key, value in asdict(result).items() if key not in ("image", "shown", "transparency")}
    record.update(layer=layer, **run)
    write_json_atomic(folder / "opt.json", record, indent=1)
