"""Gradients with respect to filter weights: how each weight of a conv layer would change a chosen
output unit's score (e.g. a class), as tiles like the filters themselves, and several inputs side
by side on one scale (a reference class vs a similar and a dissimilar one).

The gradients come from ``Run.weight_gradient`` (app/net/autodiff); one input at a time, since it
sums over the batch.
"""
import numpy as np

from app.errors import DeepVisError
from app.views import filters, grid, weights
from app.views.occlusion import input_batch
from app.views.registry import Comparison, Message, Tiles, shows


def weight_gradients(net, images, layer: str, units, param_layer: str, seed: str = "onehot", at=None) -> list:
    """Per input, d(``unit`` of ``layer``) / d(weights of ``param_layer``), shaped like those weights
    (O x C x kh x kw).

    images: a list of H x W x 3 uint8 BGR images (or preprocessed C x H x W float32 inputs).
    units: one unit for every input, or one per input (the same image scored for several classes).
    seed: "onehot" differentiates the unit's value (at ``at``, else its argmax for maps);
    "activation" starts from its own activation as the live backprop view does.
    param_layer may be the conv's output or a layer a few element-wise ops below it (its ReLU).
    """
    node = weights.layer_weights(net, param_layer).node
    if node.op_type != "Conv":
        raise DeepVisError(f"{net.spec.name}: {param_layer}: weight gradients are shown for Conv layers, "
                           f"this is a {node.op_type}")
    units = list(units) if isinstance(units, (list, tuple)) else [units] * len(images)
    if len(units) != len(images):
        raise DeepVisError(f"weight gradients: {len(units)} units given for {len(images)} inputs")
    conv_output = node.output[0]
    gradients = []
    for image, unit in zip(images, units):
        gradient = net.forward(input_batch(net, image)).weight_gradient(layer, unit, conv_output, seed=seed, at=at)
        gradients.append(np.asarray(gradient, np.float32))
    return gradients


def gradient_tile_sets(gradients: list, channel_swap=(2, 1, 0), unit: int = None, transpose: bool = False) -> list:
    """Per gradient, tiles on ONE shared scale (mid-gray = 0, brightest = the largest |value| of all):

    - filters that read the image (1 or 3 channels): one colour tile per filter, like the filters;
    - deeper layers with ``unit`` None: one gray tile per filter, its gradient's size (L2 over
      input channels), black = 0;
    - deeper layers with ``unit``: that filter's per-input-channel tiles.
    """
    stacked = np.stack(gradients)
    count = len(gradients)
    if filters.draws_in_colour(stacked[0]):
        tiles = filters.filter_images(stacked.reshape((-1,) + stacked.shape[2:]), channel_swap, scope="layer",
                                      signed=True, transpose=transpose)
        return list(tiles.reshape((count, -1) + tiles.shape[1:]))
    if unit is None:
        sizes = np.sqrt((stacked.astype(np.float64) ** 2).sum(axis=2))  # inputs x O x kh x kw
        peak = sizes.max()
        scaled = filters.to_uint8(sizes / peak if peak > 0 else sizes)
        if transpose:
            scaled = scaled.swapaxes(2, 3)
        return list(np.repeat(scaled[..., None], 3, axis=-1))
    tiles = filters.input_channel_tiles(stacked[:, unit].reshape((-1,) + stacked.shape[3:]), signed=True,
                                        transpose=transpose)
    return list(tiles.reshape((count, -1) + tiles.shape[1:]))


def comparison_image(tile_sets: list, titles, height: int = 300, width: int = 300) -> np.ndarray:
    """Each input's tiles as a grid, the grids side by side under their titles."""
    return grid.captioned_panels([grid.tile_grid(tiles) for tiles in tile_sets], titles, height, width)


@shows("weight grads", "layers", place=33, weights=True, origin="strongest / second / weakest (d: one)")
def compared_gradients(net, layer: str, image, activations: dict, frozen):
    """Gradients of origin units with respect to ``layer``'s filters on ``image``, one tile per
    filter, the first unit's in the layers pane and every compared unit's in the jpgvis pane, on one
    shared scale (mid-gray = 0). The origin is the unit frozen with d, alone; else the last layer's
    strongest, second strongest and weakest units on this image (for a class layer: the class, a
    similar one and a dissimilar one)."""
    if frozen is not None:
        origin_layer, units = frozen[0], [frozen[1]]
    else:
        origin_layer = net.layers[-1].name
        value = activations[origin_layer]
        ranked = np.argsort(-value.reshape(len(value), -1).max(axis=1), kind="stable")
        units = [int(u) for u in dict.fromkeys((ranked[0], ranked[min(1, len(ranked) - 1)], ranked[-1]))]
    try:
        gradients = weight_gradients(net, [image] * len(units), origin_layer, units, layer)
    except DeepVisError as error:
        return Message(str(error))
    spec = net.spec.input
    sets = gradient_tile_sets(gradients, spec.channel_swap, transpose=spec.transpose)
    labels = net.labels or []
    count = len(activations[origin_layer])
    titles = [labels[u] if len(labels) == count else f"unit {u}" for u in units]
    return Tiles(np.stack(sets[0]), sharp=True, detail=Comparison(tuple(zip(titles, sets))))
