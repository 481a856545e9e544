"""The buttons pane: a row of buttons for the mouse, each running a key's action."""
from functools import lru_cache

import numpy as np

from app.ui import draw as paint

BUTTONS = (  # label, action
    ("< Prev", "previous_image"), ("Next >", "next_image"), ("Cam/Files", "toggle_camera"),
    ("Freeze", "freeze_camera"), ("Backprop", "next_backprop_mode"), ("Back View", "next_backprop_view"),
    ("Occlusion", "toggle_occlusion"),
    ("Colormap", "next_colormap"), ("Overlay", "next_input_overlay"), ("Zoom", "cycle_zoom"),
    ("Act/Diff", "toggle_diffs"), ("Pattern", "next_pattern"), ("Weights", "next_weights_view"),
    ("Order", "next_channel_order"), ("Order Src", "next_order_source"), ("3-D", "toggle_volume_view"), ("Boost", "next_gamma_boost"),
    ("Save", "save_view"), ("Help", "help"), ("Quit", "quit"),
)


def _bounds(width: int):
    step = width / len(BUTTONS)
    return [(int(i * step), int((i + 1) * step)) for i in range(len(BUTTONS))]


def draw(view, height: int, width: int) -> np.ndarray:
    return _drawn(height, width, view.font * 0.9, view.color("button"))


@lru_cache(maxsize=4)
def _drawn(height: int, width: int, font: float, color: tuple) -> np.ndarray:
    """The pane never changes with the frame: drawn once per size and look (read-only)."""
    pane = np.full((height, width, 3), 25, np.uint8)
    for (label, _), (left, right) in zip(BUTTONS, _bounds(width)):
        pane[3:height - 3, left + 2:right - 2] = color
        text_left = left + max(2, (right - left - paint.text_width(label, font)) // 2)
        paint.text(pane, label, (text_left, (height + paint.line_height(font) // 2) // 2 + 1), font)
    pane.flags.writeable = False
    return pane


def hit(view, y: int, x: int, height: int, width: int):
    for (_, action), (left, right) in zip(BUTTONS, _bounds(width)):
        if left <= x < right:
            return action
    return None
