"""Lucid's diversity objective: several images of one unit pushed apart by a penalty on how alike
their Gram matrices (channel x channel correlations of a layer's activations) are.

For a group of D images with normalized Grams G_i (unit Frobenius norm), the penalty is
sum over i != j of <G_i, G_j>, divided by D (lucid/optvis/objectives.py, ``diversity``).
"""
import numpy as np


def penalty(activations: np.ndarray) -> tuple:
    """(penalty, gradient wrt ``activations``) for one group: D x C x ... activations of one layer."""
    count = len(activations)
    flat = activations.reshape(count, activations.shape[1], -1).astype(np.float64)
    grams = flat @ flat.transpose(0, 2, 1)
    norms = np.maximum(np.linalg.norm(grams, axis=(1, 2), keepdims=True), 1e-10)
    unit = grams / norms
    total = unit.sum(axis=0)
    value = (np.einsum("ijk,jk->i", unit, total) - np.einsum("ijk,ijk->i", unit, unit)).sum() / count
    grad_unit = 2.0 * (total[None] - unit) / count                     # d value / d G_i (each pair twice)
    along = np.einsum("ijk,ijk->i", grad_unit, unit).reshape(-1, 1, 1)
    grad_grams = (grad_unit - unit * along) / norms                    # through the normalization
    grad = (grad_grams + grad_grams.transpose(0, 2, 1)) @ flat         # through G = A A^T
    return float(value), grad.reshape(activations.shape).astype(np.float32)


def diversity_layer(net, objective_layer: str) -> str:
    """Where the Grams are taken: the objective's layer when it is a map of more than one
    position, else the last such map before it (a class's logits have no positions to compare)."""
    maps = [layer.name for layer in net.layers if layer.kind == "map" and np.prod(layer.shape[1:]) > 1]
    if objective_layer in maps:
        return objective_layer
    names = [layer.name for layer in net.layers]
    before = [name for name in maps if names.index(name) < names.index(objective_layer)]
    return (before or maps)[-1]
