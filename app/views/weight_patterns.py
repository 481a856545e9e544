"""The weights views of the layers pane (keys s and g): every unit's filter, every unit's weight
histogram, and the correlation of the units' weights, computed from the net's weights alone."""
from app.errors import DeepVisError
from app.views import filters, weights
from app.views.registry import Message, Picture, Tiles, shows


def _unit_weights(net, layer: str):
    """The weights behind ``layer`` (app/views/weights.py), or a Message saying why there are none."""
    try:
        return weights.unit_weights(net, layer)
    except DeepVisError as error:
        return Message(str(error))


@shows("filters", "layers", place=30, weights=True)
def filter_tiles(net, layer: str):
    """Every unit's filter: a colour picture for a layer reading the image, else a grid of one gray
    tile per input channel (tile k = unit k)."""
    unit_weights = _unit_weights(net, layer)
    if isinstance(unit_weights, Message):
        return unit_weights
    if unit_weights.ndim != 4:
        return Message(f"{net.spec.name}: {layer}: no filters to draw (weights of shape {unit_weights.shape}): try g")
    spec = net.spec.input
    return Tiles(filters.unit_filter_tiles(unit_weights, spec.channel_swap, spec.transpose), sharp=True)


@shows("weights histogram", "layers", place=31, weights=True)
def weight_histograms(net, layer: str):
    """Every unit's histogram of its weights, over bins shared by the layer."""
    unit_weights = _unit_weights(net, layer)
    return unit_weights if isinstance(unit_weights, Message) else Tiles(filters.histogram_tiles(*filters.weight_histograms(unit_weights)))


@shows("weights correlation", "layers", place=32, weights=True)
def weight_correlation(net, layer: str):
    """The correlation of the units' weights, -1 blue to 1 red."""
    unit_weights = _unit_weights(net, layer)
    if isinstance(unit_weights, Message):
        return unit_weights
    return Picture(filters.correlation_image(filters.weight_correlation(unit_weights), size=600))
