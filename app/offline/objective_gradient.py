"""A step's climb: the objectives' scores on a batch and the gradient of their sum with respect to
the net's input, for activation maximization (optimize.py) and the parameterized images (render.py).

Objectives on one layer go through one ONNX Runtime session that computes the forward up to the
layer and the backward from the objectives' seed to the input (app/net/autodiff/input_gradient.py),
made once per (layer, batch size) and kept by the net: nothing but the batch, the seed, the layer's
value and the gradient crosses between NumPy and ONNX Runtime, and the forward is fused as in a plain
run. Every objective is linear in the activations, so the seed is a constant (objectives.seeds).

Neurons (objectives at one position each, the paper's presets) depend on their receptive field
alone, and their gradient is zero elsewhere: the session then takes the image cropped to the union
of their fields (aligned to the layer's stride, so every unit the neurons read is computed from the
same pixels), when that crop is at most CROP_SHARE of the image. Made once per crop, the session is
checked against the whole image's forward; a crop that changes a neuron's value is not used.

Two stages instead (a forward run up to the layers, then one backward pass per layer): objectives on
several layers, a penalty whose seed depends on the activation (diversity's), the NumPy engine
(``net.backward_engine``), and a net whose backward the graph cannot record.
"""
import math
import weakref
from dataclasses import replace

import numpy as np

from app.net import onnx_graph
from app.net.autodiff.input_gradient import input_gradient_model, run_input_gradient
from app.net.autodiff.recorder import CannotRecord
from app.net.receptive_field import receptive_fields
from app.net.run import Run
from app.offline import objectives

CROP_SHARE = 0.6   # of the image's pixels: a larger crop saves too little to pay for its own session
_FIELDS = weakref.WeakKeyDictionary()   # net -> its receptive fields, dropped with the net


def objective_gradient(net, batch: np.ndarray, targets: list, views: int = 1, penalty=None) -> tuple:
    """(scores, gradient): each objective's score (``targets``: a tuple of objectives.Term per image,
    shown on ``views`` rows of ``batch`` each) and the gradient of the scores' sum with respect to
    ``batch``. penalty: (layer, seed_of) adds the backward pass from ``seed_of(value of layer)``."""
    layers = objectives.layers_of(targets)
    if penalty is None and len(layers) == 1 and net.backward_engine == "graph":
        for crop in dict.fromkeys([neuron_crop(net, targets, layers[0]), None]):
            found = _one_session(net, batch, targets, views, layers[0], crop)
            if found is not None:
                return found
    wanted = sorted(set(layers) | ({penalty[0]} if penalty else set()))
    run = net.forward(batch, up_to=wanted[0] if len(wanted) == 1 else None)
    values = {layer: run[layer] for layer in wanted}
    seeds = objectives.seeds(targets, {layer: value.shape for layer, value in values.items()}, views)
    if penalty:
        layer, seed_of = penalty
        seeds[layer] = seeds.get(layer, 0) + seed_of(values[layer])
    gradient = sum(run.backward(layer, 0, mode="grad", seed=seed).input for layer, seed in seeds.items())
    return objectives.scores(targets, values, views), gradient


def _one_session(net, batch: np.ndarray, targets: list, views: int, layer: str, crop):
    """(scores, gradient) through the one session, of the batch cropped to ``crop`` (y0, y1, x0, x1;
    None: whole); None when that session cannot be made (the graph, or the crop, says why)."""
    part, shifted = batch, targets
    if crop is not None:
        y0, y1, x0, x1 = crop
        part = np.ascontiguousarray(batch[:, :, y0:y1, x0:x1])
        shifted = _shifted(net, targets, layer, crop)
    session = net.graph_session(("input_gradient", layer, len(batch), crop),
                                lambda: _model(net, batch, part, layer, targets, shifted, views, crop))
    if isinstance(session, str):   # the one line why not
        return None
    seed = objectives.seeds(shifted, {layer: (len(part),) + session[1].layer_shape}, views)[layer]
    gradient, value = run_input_gradient(*session, part, seed)
    if crop is not None:
        whole = np.zeros_like(batch)
        whole[:, :, y0:y1, x0:x1] = gradient
        gradient = whole
    return objectives.scores(shifted, {layer: value}, views), gradient


def _model(net, batch, part, layer: str, targets, shifted, views: int, crop):
    """The one session's model, of the crop checked against the whole image when cropped."""
    if crop is None:
        return input_gradient_model(net.forward(batch, up_to=layer), layer)
    run = _forward_at_size(net, part, layer)
    whole = net.forward(batch, up_to=layer)
    expected = objectives.scores(targets, {layer: whole[layer]}, views)
    if not np.allclose(objectives.scores(shifted, {layer: run[layer]}, views), expected, rtol=1e-5,
                       atol=1e-5 * max(np.abs(whole[layer]).max(), 1e-30)):
        raise CannotRecord(f"layer {layer}: cropped to {crop}, the neurons' values change")
    return input_gradient_model(run, layer)


def _forward_at_size(net, part: np.ndarray, layer: str) -> Run:
    """A forward run of images of another size than the net's, every tensor up to ``layer``."""
    model = onnx_graph.with_input_size(onnx_graph.needed_for(onnx_graph.runnable(net.skeleton), layer),
                                       part.shape[2:])
    session = net.make_session(onnx_graph.with_all_outputs(model))
    names = [output.name for output in session.get_outputs()]
    return Run(net, part, dict(zip(names, session.run(None, {net.input_name: part}))), partial=True)


def neuron_crop(net, targets: list, layer: str):
    """(y0, y1, x0, x1): the input pixels the neurons of ``targets`` see, aligned to the layer's
    stride; None when an objective is not a neuron, the field is the whole image or the crop would
    hold more than CROP_SHARE of it."""
    if not all(term.position is not None for terms in targets for term in terms):
        return None
    field = _fields(net)[layer]
    if field.whole or not all(float(step).is_integer() for step in field.stride):
        return None
    size = net.input_shape[1:]
    boxes = np.array([field.box(*term.position) for terms in targets for term in terms])
    crop = []
    for axis in (0, 1):
        begin, end, step = boxes[:, 2 * axis].min(), boxes[:, 2 * axis + 1].max(), int(field.stride[axis])
        first = max(0, begin // step * step)
        crop += [int(first), int(min(size[axis], first + math.ceil((end - first) / step) * step))]
    y0, y1, x0, x1 = crop
    return tuple(crop) if (y1 - y0) * (x1 - x0) <= CROP_SHARE * size[0] * size[1] else None


def _shifted(net, targets: list, layer: str, crop: tuple) -> list:
    """The terms with their positions in the cropped image's layer."""
    stride = _fields(net)[layer].stride
    shift = (crop[0] // int(stride[0]), crop[2] // int(stride[1]))
    return [tuple(replace(term, position=(term.position[0] - shift[0], term.position[1] - shift[1]))
                  for term in terms) for terms in targets]


def _fields(net) -> dict:
    """The net's receptive fields (10 ms for the default model: not once per step)."""
    fields = _FIELDS.get(net)
    if fields is None:
        fields = _FIELDS[net] = receptive_fields(net)
    return fields
