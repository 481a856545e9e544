"""The back pane: the backward pass at the input, in the chosen view and colormap.

Gray when backprop is off; a message instead of a gray picture when it fails or gives all zeros
(the original's most confusing sight); tinted while it shows an older frame or origin. A siamese
pair shown "both" draws both images' backward passes side by side on one scale.
"""
import numpy as np

from app.ui import draw as paint
from app.views.scaling import PERCENTILE


def draw(view, height: int, width: int) -> np.ndarray:
    state = view.state
    if state.backprop_mode == "off":
        pane = np.full((height, width, 3), 128, np.uint8)
        paint.text(pane, "backprop off (b)", (8, paint.line_height(view.font)), view.font, (60, 60, 60))
        return pane
    snapshot = view.snapshot
    if snapshot is None or snapshot.request.backprop is None:
        return paint.message(height, width, [view.waiting or "computing backprop ..."], view.font)
    pair = view.pair
    if pair is not None and snapshot.input_diff is not None and pair.input_diff is not None:
        pane = render_pair(snapshot.input_diff, pair.input_diff, state.backprop_view, state.colormap, height, width,
                           view.settings.grad_blur_radius, view.font, view.settings.picture_percentile)
        zeros = [which for which, shown in (("first", snapshot), ("second", pair)) if shown.backprop_message]
        caption = "first | second" + (f"  ({' and '.join(zeros)}: all zeros)" if zeros else "")
        paint.text(pane, caption, (6, height - 8), view.font, view.color("title"))
    elif snapshot.input_diff is None or snapshot.backprop_message:
        return paint.message(height, width, [snapshot.backprop_message or "no backprop"], view.font)
    else:
        pane = render(snapshot.input_diff, state.backprop_view, state.colormap, height, width,
                      view.settings.grad_blur_radius, view.font, view.settings.picture_percentile)
    if view.back_stale:
        pane = (pane * 0.6 + np.array(view.color("stale")) * 0.4).astype(np.uint8)
    return pane


def render_pair(first: np.ndarray, second: np.ndarray, backprop_view: str, colormap: str, height: int,
                width: int, blur_sigma: float = 4.0, font: float = 0.5,
                percentile: float = PERCENTILE) -> np.ndarray:
    """Two input diffs side by side on one scale, zeros between them wide enough that the
    normblur view does not blur one into the other; histograms one above the other."""
    if backprop_view == "histogram":
        top = height // 2
        return np.vstack([paint.histogram(first, top, width, scale=font),
                          paint.histogram(second, height - top, width, scale=font)])
    gap = np.zeros((first.shape[0], int(3 * blur_sigma) + 2, 3), first.dtype)
    return render(np.hstack([first, gap, second]), backprop_view, colormap, height, width, blur_sigma, font,
                  percentile)


def render(diff: np.ndarray, backprop_view: str, colormap: str, height: int, width: int,
           blur_sigma: float = 4.0, font: float = 0.5, percentile: float = PERCENTILE) -> np.ndarray:
    """An H x W x 3 input diff drawn as ``backprop_view`` in a ``height`` x ``width`` pane, scaled
    robustly (the ``percentile`` of its nonzero |values| is full scale)."""
    if backprop_view == "histogram":
        return paint.histogram(diff, height, width, scale=font)
    values = paint.backprop_map(diff, backprop_view, blur_sigma, percentile)
    image = (np.clip(values, 0, 1) * 255).astype(np.uint8) if values.ndim == 3 else paint.colorize(values, colormap)
    # nearest when enlarging: linear blending halves the contrast of pixel-sized stripes (strided convs)
    enlarged = min(height / image.shape[0], width / image.shape[1]) >= 1
    return paint.fit_into(image, height, width, nearest=enlarged, fill=30)
