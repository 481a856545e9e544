"""The aux pane: the go-to-class entry and its matches while it is open (key /), the top-5
predictions while the cursor is on the layer list, else the selected unit enlarged (its
activation, or its diff when the layers pane shows diffs: the registry's UnitMaps; a unit of a vector layer as a value bar,
named by its label on a class layer), or the layer's activation as a turning 3-D volume (key 3). A
siamese pair shown "both" gets both images' predictions and the unit of both, side by side."""
import numpy as np

from app.labels import class_name
from app.net.net import NO_CLASS_OUTPUT
from app.ui import draw as paint
from app.ui.panes import pairs
from app.views.registry import Message

ENTRY_MATCHES = 8   # matches the go-to-class entry lists


def draw(view, height: int, width: int) -> np.ndarray:
    if view.state.class_entry is not None:
        return class_entry(view, height, width)
    if view.state.cursor_on_layers and view.state.show_labels:
        return predictions(view, height, width)
    if view.state.volume_view:
        return volume(view, height, width)
    return unit(view, height, width)


def volume(view, height: int, width: int) -> np.ndarray:
    if view.volume is None:
        return paint.message(height, width, ["rendering the 3-D view ..."], view.font)
    band = paint.line_height(view.font) + 8
    pane = np.full((height, width, 3), 30, np.uint8)
    pane[:height - band] = paint.fit_into(view.volume, height - band, width, fill=30)
    shape = "x".join(str(d) for d in view.net.shapes[view.state.layer])
    paint.text(pane, f"{view.net.pretty_names[view.state.layer]} {shape} (3-D)", (6, height - 8), view.font,
               view.color("title"))
    return pane


def class_entry(view, height: int, width: int) -> np.ndarray:
    """What is typed, the classes it matches (the one Enter picks marked), and the keys."""
    state, font = view.state, view.font
    if not state.class_layers:
        return paint.message(height, width, ["Go to class", NO_CLASS_OUTPUT, "Esc closes"], font)
    pane = np.full((height, width, 3), 30, np.uint8)
    row_h = paint.line_height(font) + 4
    paint.text(pane, "Go to class: label or index", (8, row_h), font, view.color("title"))
    paint.text(pane, f"> {state.class_entry}_", (8, 2 * row_h + 4), font * 1.2, view.color("text"),
               max_width=width - 16)
    matches, pick = state.class_matches, state.picked
    first = max(0, pick - ENTRY_MATCHES + 1)
    for row, number in enumerate(matches[first:first + ENTRY_MATCHES]):
        top = 3 * row_h + 8 + row * row_h
        if first + row == pick:
            pane[top:top + row_h, 4:width - 4] = view.color("bar")
        paint.text(pane, f"{number:>4} {class_name(state.labels, number)}", (8, top + row_h - 6), font,
                   max_width=width - 16)
    if not matches:
        said = "no class matches" if state.class_entry else "type part of a label or an index"
        paint.text(pane, said, (8, 3 * row_h + 8 + row_h - 6), font, view.color("title"))
    footer = f"{len(matches)} match{'es' if len(matches) != 1 else ''} | Enter picks | Esc"
    paint.text(pane, footer, (8, height - 8), font, view.color("title"), max_width=width - 16)
    return pane


def predictions(view, height: int, width: int) -> np.ndarray:
    if not view.net.class_layers:
        return paint.message(height, width, ["Predictions", NO_CLASS_OUTPUT], view.font)
    if view.pair is None:
        return _predictions(view, "Predictions", view.snapshot.predictions if view.snapshot else (), height, width)
    top = height // 2
    return np.vstack([_predictions(view, "Predictions: first image", view.snapshot.predictions, top, width),
                      _predictions(view, "Predictions: second image", view.pair.predictions, height - top, width)])


def _predictions(view, title: str, ranked, height: int, width: int) -> np.ndarray:
    pane = np.full((height, width, 3), 30, np.uint8)
    font = view.font
    paint.text(pane, title, (8, paint.line_height(font)), font, view.color("title"))
    if not ranked:
        paint.text(pane, "(none yet)", (8, 2 * paint.line_height(font)), font)
        return pane
    row_h = max(paint.line_height(font) + 8, (height - 2 * paint.line_height(font)) // 6)
    for rank, (label, probability) in enumerate(ranked):
        top = paint.line_height(font) * 2 + rank * row_h
        if top + row_h > height:
            break
        bar = int((width - 16) * probability)
        pane[top:top + row_h // 3, 8:8 + bar] = view.color("bar")
        name = label if len(label) <= 34 else label[:33] + "~"
        paint.text(pane, f"{probability:5.1%} {name}", (8, top + row_h // 3 + paint.line_height(font)), font)
    return pane


def unit(view, height: int, width: int) -> np.ndarray:
    """The selected unit's map of the activations or diffs the layers pane shows with no pattern mode."""
    unit_maps = view.unit_maps()
    if unit_maps is None or isinstance(unit_maps, Message):
        return paint.message(height, width, ["no activation yet"], view.font)
    values = unit_maps.maps
    index = min(view.state.unit, len(values[0]) - 1)
    band = paint.line_height(view.font) + 8
    caption = unit_caption(view, index)
    if values[0].shape[1:] == (1, 1):   # a vector layer: a 1 x 1 map says nothing
        pane = np.vstack([value_bar(view, value[:, 0, 0], index, (height - band) // len(values), width)
                          for value in values])
        pane = np.vstack([pane, np.full((height - len(pane), width, 3), 30, np.uint8)])
        paint.text(pane, caption, (6, height - 8), view.font, view.color("title"), max_width=width - 12)
        return pane
    shown = [value[index] for value in values]
    image = pairs.side_by_side([maps[None] for maps in shown], lambda maps: colored(view, maps, unit_maps.signed))[0]
    pane = np.full((height, width, 3), 30, np.uint8)
    pane[:height - band] = paint.fit_into(image, height - band, width, nearest=True, fill=30)
    peaks = " | ".join(f"{float(one.max()):.3g}" for one in shown)
    paint.text(pane, f"{caption}  max {peaks}", (6, height - 8), view.font, view.color("title"),
               max_width=width - 12)
    return pane


def unit_caption(view, index: int) -> str:
    """The layer and unit, and the unit's label on a class layer ("fc:967 espresso")."""
    caption = f"{view.net.pretty_names[view.state.layer]}:{index}"
    if view.layer_name in view.net.class_layers and view.state.labels:
        caption += f" {class_name(view.state.labels, index)}"
    return caption


def value_bar(view, vector: np.ndarray, index: int, height: int, width: int) -> np.ndarray:
    """Unit ``index`` of a vector layer: its value as a bar on the layer's range (zero marked),
    the value, and its rank among the layer's units."""
    pane = np.full((height, width, 3), 30, np.uint8)
    font, row_h = view.font, paint.line_height(view.font) + 4
    value = float(vector[index])
    low, high = min(float(vector.min()), 0.0), max(float(vector.max()), 0.0)
    span = high - low or 1.0
    left, right = 8, width - 8
    top, bottom = height // 2 - row_h, height // 2 + row_h
    pane[top:bottom, left:right] = 55
    x_zero, x_value = (left + int((right - left) * (v - low) / span) for v in (0.0, value))
    color = view.color("bar" if value >= 0 else "negative")
    pane[top:bottom, min(x_zero, x_value):max(x_zero, x_value) + 1] = color
    pane[top - 4:bottom + 4, x_zero] = view.color("text")
    rank = int(np.sum(vector > value)) + 1
    paint.text(pane, f"{value:.4g}  rank {rank}/{len(vector)}", (8, top - 10), font, view.color("text"),
               max_width=width - 16)
    paint.text(pane, f"{low:.3g}", (left, bottom + row_h), font * 0.8, view.color("text"))
    high_text = f"{high:.3g}"
    paint.text(pane, high_text, (right - paint.text_width(high_text, font * 0.8), bottom + row_h), font * 0.8,
               view.color("text"))
    return pane


def colored(view, maps: np.ndarray, signed: bool, indiv: float = 0.0) -> np.ndarray:
    """C x H x W values -> C x H x W x 3 pictures: signed ones (diffs) red / green on one robust
    scale, others (activations) boosted (each channel by its max^-``indiv``) in the colormap."""
    state = view.state
    if signed:
        return paint.signed_colors(maps, view.settings.picture_percentile)
    return paint.colorize(paint.boost(maps, indiv, state.gamma_boosts[state.gamma_boost]), state.colormap)
