"""The aux pane: the top-5 predictions while the cursor is on the layer list, else the selected
unit enlarged (its activation, or its diff when the layers pane shows diffs), or the layer's
activation as a turning 3-D volume (key 3). A siamese pair shown "both" gets both images'
predictions and the unit of both, side by side."""
import numpy as np

from app.ui import draw as paint
from app.ui.panes import pairs


def draw(view, height: int, width: int) -> np.ndarray:
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


def predictions(view, height: int, width: int) -> np.ndarray:
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
    values = view.shown_values()
    if values[0] is None:
        return paint.message(height, width, ["no activation yet"], view.font)
    index = min(view.state.unit, len(paint.unit_maps(values[0])) - 1)
    shown = [paint.unit_maps(value)[index] for value in values]
    image = pairs.side_by_side([maps[None] for maps in shown], lambda maps: colored(view, maps))[0]
    band = paint.line_height(view.font) + 8
    pane = np.full((height, width, 3), 30, np.uint8)
    pane[:height - band] = paint.fit_into(image, height - band, width, nearest=True, fill=30)
    peaks = " | ".join(f"{float(one.max()):.3g}" for one in shown)
    caption = f"{view.net.pretty_names[view.state.layer]}:{index}  max {peaks}"
    paint.text(pane, caption, (6, height - 8), view.font, view.color("title"), max_width=width - 12)
    return pane


def colored(view, maps: np.ndarray, indiv: float = 0.0) -> np.ndarray:
    """C x H x W values -> C x H x W x 3 pictures: diffs red / green on one robust scale,
    activations boosted (each channel by its max^-``indiv``) in the colormap."""
    state = view.state
    if state.show_diffs:
        return paint.signed_colors(maps, view.settings.picture_percentile)
    return paint.colorize(paint.boost(maps, indiv, state.gamma_boosts[state.gamma_boost]), state.colormap)
