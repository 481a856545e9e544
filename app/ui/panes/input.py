"""The input pane: the current frame as the net sees it (a siamese pair side by side), with the
backprop overlay when one is chosen, the input's message (skipped file, lost camera), and a red
banner when the net's weights are random (--random-weights)."""
import numpy as np

from app.inputs import fit_to_input
from app.ui import draw as paint
from app.ui.compute import shown_images


def draw(view, height: int, width: int) -> np.ndarray:
    pane = _frame(view, height, width)
    if view.net.random_weights_seed is not None:
        _random_weights_banner(pane, view)
    return pane


def _frame(view, height: int, width: int) -> np.ndarray:
    frame = view.frame
    if frame is None or frame.waiting:
        return paint.message(height, width, [frame.message if frame is not None else "waiting for input ..."],
                             view.font)
    size = view.net.input_size
    fitted = [fit_to_input(image, size, view.state.fit_mode)
              for image in shown_images(frame.images, view.state.siamese_view)]
    masks = _overlay_masks(view)   # one per image shown, each from its own backward pass
    fitted = [paint.overlay(image, mask, view.state.input_overlay) if mask is not None else image
              for image, mask in zip(fitted, masks + [None] * (len(fitted) - len(masks)))]
    pane = paint.fit_into(np.hstack(fitted), height, width)
    if frame.message:
        _banner(pane, frame.message, view.font)
    return pane


def _random_weights_banner(pane: np.ndarray, view) -> None:
    """A red band at the top: the weights are random, nothing shown was learned."""
    font = view.font
    lines = ["RANDOM WEIGHTS", f"seed {view.net.random_weights_seed}: an untrained net"]
    band = paint.line_height(font) * len(lines) + 8
    pane[:band] = view.color("warning")
    for row, line in enumerate(lines):
        paint.text(pane, line, (6, paint.line_height(font) * (row + 1) + 2), font, (255, 255, 255), 2 - row)


def _overlay_masks(view) -> list:
    if view.state.input_overlay == "off" or view.snapshot is None:
        return []
    shown = [view.snapshot] + ([view.pair] if view.pair is not None else [])
    return [paint.backprop_map(s.input_diff, "normblur", view.settings.grad_blur_radius,
                               view.settings.picture_percentile)
            if s.input_diff is not None else None for s in shown]


def _banner(pane: np.ndarray, message: str, font: float) -> None:
    """The message on a dark band at the bottom (wrapped to two lines at most)."""
    height, width = pane.shape[:2]
    lines = list(paint.wrap(message, max(8, int(width / (20 * font)))))[:2]
    band = paint.line_height(font) * len(lines) + 6
    pane[height - band:] = (pane[height - band:] * 0.3).astype(np.uint8)
    for row, line in enumerate(lines):
        paint.text(pane, line, (4, height - band + paint.line_height(font) * (row + 1)), font, (120, 200, 255))

