"""The control pane: the layer list, scrolled to keep the selected layer in view.

Colours: the selected layer, the cursor (when it is on the list) and the layer the backprop
starts from when frozen. A click on a name selects that layer.
"""
import numpy as np

from app.ui import draw as paint

GAP = 14


def positions(view, width: int) -> list:
    """(layer index, left, right) of each name shown, in pane pixels."""
    names, font, selected = view.net.pretty_names, view.font, view.state.layer
    widths = [paint.text_width(name, font) for name in names]
    first, used = selected, widths[selected]
    while first > 0 and used + widths[first - 1] + GAP < width / 2:
        first -= 1
        used += widths[first] + GAP
    shown, left = [], 6
    for index in range(first, len(names)):
        if left + widths[index] > width and index != selected:
            break
        shown.append((index, left, left + widths[index]))
        left += widths[index] + GAP
    return shown


def draw(view, height: int, width: int) -> np.ndarray:
    pane = np.full((height, width, 3), 35, np.uint8)
    state, font = view.state, view.font
    frozen = state.frozen_origin[0] if state.frozen_origin is not None else None
    baseline = (height + paint.line_height(font) // 2) // 2 + 2
    for index, left, right in positions(view, width):
        color = view.color("text")
        if index == frozen:
            color = view.color("frozen")
        if index == state.layer:
            color = view.color("cursor") if state.cursor_on_layers else view.color("selected")
            pane[2:height - 2, left - 4:right + 4] = 70
        paint.text(pane, view.net.pretty_names[index], (left, baseline), font, color)
    return pane


def hit(view, y: int, x: int, height: int, width: int):
    for index, left, right in positions(view, width):
        if left - GAP // 2 <= x < right + GAP // 2:
            return ("select_layer", index)
    return None
