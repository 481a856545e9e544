"""A step's climb: the objectives' scores on a batch and the gradient of their sum with respect to
the net's input, for activation maximization (optimize.py) and the parameterized images (render.py).

Objectives on one layer go through one ONNX Runtime session that computes the forward up to the
layer and the backward from the objectives' seed to the input (app/net/autodiff/input_gradient.py),
made once per (layer, batch size) and kept by the net: nothing but the batch, the seed, the layer's
value and the gradient crosses between NumPy and ONNX Runtime, and the forward is fused as in a plain
run. Every objective is linear in the activations, so the seed is a constant (objectives.seeds).

Two stages instead (a forward run up to the layers, then one backward pass per layer): objectives on
several layers, a penalty whose seed depends on the activation (diversity's), the NumPy engine
(``net.backward_engine``), and a net whose backward the graph cannot record.
"""
import numpy as np

from app.net.autodiff.input_gradient import input_gradient_model, run_input_gradient
from app.offline import objectives


def objective_gradient(net, batch: np.ndarray, targets: list, views: int = 1, penalty=None) -> tuple:
    """(scores, gradient): each objective's score (``targets``: a tuple of objectives.Term per image,
    shown on ``views`` rows of ``batch`` each) and the gradient of the scores' sum with respect to
    ``batch``. penalty: (layer, seed_of) adds the backward pass from ``seed_of(value of layer)``."""
    layers = objectives.layers_of(targets)
    if penalty is None and len(layers) == 1 and net.backward_engine == "graph":
        layer = layers[0]
        session = net.graph_session(("input_gradient", layer, len(batch)),
                                    lambda: input_gradient_model(net.forward(batch, up_to=layer), layer))
        if not isinstance(session, str):   # else the one line why not: the two stages run
            seed = objectives.seeds(targets, {layer: (len(batch),) + net.layer(layer).shape}, views)[layer]
            gradient, value = run_input_gradient(*session, batch, seed)
            return objectives.scores(targets, {layer: value}, views), gradient
    wanted = sorted(set(layers) | ({penalty[0]} if penalty else set()))
    run = net.forward(batch, up_to=wanted[0] if len(wanted) == 1 else None)
    values = {layer: run[layer] for layer in wanted}
    seeds = objectives.seeds(targets, {layer: value.shape for layer, value in values.items()}, views)
    if penalty:
        layer, seed_of = penalty
        seeds[layer] = seeds.get(layer, 0) + seed_of(values[layer])
    gradient = sum(run.backward(layer, 0, mode="grad", seed=seed).input for layer, seed in seeds.items())
    return objectives.scores(targets, values, views), gradient
