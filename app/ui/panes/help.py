"""The help screen: the window dimmed to 0.7 with the key map over it (generated from keys.py)."""
import numpy as np

from app.ui import draw as paint
from app.ui.keys import help_lines


def draw(view, window: np.ndarray) -> np.ndarray:
    """``window`` dimmed, with every key binding in columns."""
    image = (window * 0.3).astype(np.uint8)
    font = view.font
    row_h = paint.line_height(font)
    lines = ("Keys (h closes this screen)",) + help_lines()
    rows = max(1, (image.shape[0] - 2 * row_h) // row_h)
    column_width = image.shape[1] // max(1, -(-len(lines) // rows))
    for number, line in enumerate(lines):
        column, row = divmod(number, rows)
        color = view.color("title") if number == 0 else (235, 235, 235)
        paint.text(image, line, (12 + column * column_width, row_h * (row + 1) + 8), font, color)
    return image
