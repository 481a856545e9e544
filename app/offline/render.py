"""Feature visualization in a parameterized image (Lucid's ``render_vis``, MACO): the image is made
by a parameterization (app/offline/fourier.py, maco.py) at its own size, the net sees random views
of it resampled to its input (app/offline/sampling.py) in its own colours (net_input.py), and Adam
or NAdam climbs the objective (objectives.py) through all of it.

Each image's random start, views and noise come from its own stream (seed, unit[, copy]) and its
optimizer moments are its own, so an image does not depend on which images share its batch (but
for diversity, which compares the copies of one unit on purpose).
"""
from dataclasses import dataclass

import numpy as np

from app.errors import DeepVisError
from app.offline import diversity, objectives, sampling
from app.offline.adam import Adam
from app.offline.fourier import Fourier
from app.offline.maco import Maco, photo_spectrum
from app.offline.net_input import NetInput, to_bgr_uint8
from app.offline.objective_gradient import objective_gradient


@dataclass(frozen=True)
class Recipe:
    """A parameterized preset: Lucid's and MACO's published defaults (docs/offline_images.md)."""

    parameterization: str            # "fourier" (Lucid) or "maco" (phase only)
    optimizer: str                   # "adam" or "nadam"
    lr: float
    iterations: int
    size: int = 128                  # the image's side in pixels (resized to the net's input)
    views: str = "lucid"             # "lucid" (pad, jitter, scale, rotate, jitter) or "crops"
    crops: int = 1                   # views per image per step
    box_start: float = 0.0           # crops: their sides are 1 - U(0, box) of the image's, box going
    box_end: float = 0.0             #   linearly from box_start to box_end over the run
    noise: float = 0.0               # N(0, noise) added to every view (0..1 pixel units)
    objective: str = "channel"       # the default objective for a layer's units


RECIPES = {
    "lucid": Recipe("fourier", "adam", lr=0.05, iterations=512),
    "maco": Recipe("maco", "nadam", lr=1.0, iterations=256, views="crops", crops=32, box_start=0.5,
                   box_end=0.05, noise=0.08),
}


@dataclass
class Rendered:
    """One image made for one objective."""

    image: np.ndarray          # H x W x 3 uint8 BGR
    activation: float          # the objective on ``image`` as the net sees it whole
    start_activation: float    # the same on the random start
    transparency: np.ndarray   # H x W: accumulated |gradient| wrt the image (where the objective looked)


def parameterization(recipe: Recipe, size: tuple):
    if recipe.parameterization == "fourier":
        return Fourier(*size)
    return Maco(photo_spectrum(size), size[1])


def _views(recipe: Recipe, streams: list, step: int, steps: int, size: tuple, out_size: tuple):
    views, owners = [], []
    for owner, stream in enumerate(streams):
        for _ in range(recipe.crops):
            if recipe.views == "lucid":
                views.append(sampling.lucid_view(stream, size, out_size))
            else:
                box = recipe.box_start + (recipe.box_end - recipe.box_start) * step / max(steps - 1, 1)
                side = 1.0 - stream.uniform(0.0, box)
                centre = tuple(0.5 + stream.uniform(-1, 1, 2) * (1.0 - side) / 2)
                views.append(sampling.crop_view(size, out_size, centre, side))
            owners.append(owner)
    return sampling.Views(views, owners, size, out_size)


def _scores(net, net_input: NetInput, targets, images: np.ndarray) -> np.ndarray:
    """Each objective on its image seen whole (resized to the net's input, no transforms)."""
    whole = sampling.Views([sampling.resize_view(images.shape[2:], net_input.image_size)] * len(images),
                           range(len(images)), images.shape[2:], net_input.image_size)
    layers = objectives.layers_of(targets)
    run = net.forward(net_input.to_net(whole.apply(images)), up_to=layers[0] if len(layers) == 1 else None)
    return objectives.scores(targets, {layer: run[layer] for layer in layers}, 1)


def render(net, targets: list, recipe: Recipe, streams: list, iterations: int = None, size: tuple = None,
           groups: list = None, diversity_weight: float = 0.0, on_step=None) -> list:
    """Optimize one image per objective (``targets``: a tuple of objectives.Term per image), image i
    drawing its randomness from ``streams[i]``; returns a ``Rendered`` per image.

    size: (height, width) of the images (default: the recipe's square). groups: the images that are
    copies of one unit, pushed apart with ``diversity_weight`` times Lucid's diversity penalty.
    on_step(step, glimpse): called after every step; glimpse() gives (picture, value) per image: the
    image this step optimized (H x W x 3 uint8 BGR) and its objective over this step's views;
    returning False stops the run there.
    """
    steps = recipe.iterations if iterations is None else iterations
    if steps < 1:
        raise DeepVisError(f"{net.spec.name}: {steps} iterations; at least 1 is needed")
    size = tuple(size or (recipe.size, recipe.size))
    param, net_input = parameterization(recipe, size), NetInput(net.spec.input)
    params = param.start(streams)
    optimizer = Adam(recipe.lr, nesterov=recipe.optimizer == "nadam")
    penalty = None
    if groups and diversity_weight:
        penalty = (diversity.diversity_layer(net, objectives.layers_of(targets)[0]),
                   lambda value: _diversity_seed(value, groups, recipe.crops, diversity_weight))
    start = _scores(net, net_input, targets, param.image(params).astype(np.float32))
    transparency = np.zeros((len(targets),) + size)
    for step in range(steps):
        images = param.image(params).astype(np.float32)
        views = _views(recipe, streams, step, steps, size, net_input.image_size)
        batch = views.apply(images)
        if recipe.noise:
            batch += np.concatenate([stream.normal(0.0, recipe.noise, (recipe.crops,) + batch.shape[1:])
                                     for stream in streams]).astype(np.float32)
        scores, grad_net = objective_gradient(net, net_input.to_net(batch), targets, recipe.crops, penalty)
        grad_images = views.adjoint(net_input.grad_to_rgb(grad_net), len(targets))
        transparency += np.abs(grad_images).sum(axis=1)
        params = optimizer.step(params, param.gradient(params, grad_images).astype(np.float32))
        if on_step and on_step(step, lambda: list(zip(to_bgr_uint8(images), scores.tolist()))) is False:
            break
    images = param.image(params).astype(np.float32)
    final = _scores(net, net_input, targets, images)
    return [Rendered(*fields) for fields in zip(to_bgr_uint8(images), final.tolist(), start.tolist(),
                                                transparency)]


def _diversity_seed(value: np.ndarray, groups: list, crops: int, weight: float) -> np.ndarray:
    """The seed of ``weight`` times the diversity penalty, to be descended, of each group's copies
    (their ``crops`` views each, one view of every copy at a time) at its layer's ``value``."""
    seed = np.zeros_like(value)
    for group in groups:
        rows = np.concatenate([np.arange(i * crops, (i + 1) * crops) for i in group])
        for crop in range(crops):
            _, grad = diversity.penalty(value[rows[crop::crops]])
            seed[rows[crop::crops]] -= weight * grad / crops
    return seed
