"""The help screen: the window dimmed with the key map over it (generated from keys.py)."""
import numpy as np

from app.ui import draw as paint
from app.ui.keys import help_entries

DIM = 0.25   # brightness left to the window under the key list


def draw(view, window: np.ndarray) -> np.ndarray:
    """``window`` dimmed, with every key binding in columns (keys, then what they do)."""
    image = (window * DIM).astype(np.uint8)
    font = view.font
    row_h = paint.line_height(font)
    entries = help_entries()
    rows = max(1, (image.shape[0] - 3 * row_h) // row_h)
    columns = -(-len(entries) // rows)
    column_width = image.shape[1] // columns
    keys_width = max(paint.text_width(keys, font) for keys, _ in entries) + 16
    paint.text(image, "Keys (h closes this screen; upper case: Shift + the letter; "
                      "the buttons at the bottom take clicks)", (12, row_h + 4), font, view.color("title"))
    for number, (keys, text) in enumerate(entries):
        column, row = divmod(number, rows)
        left, baseline = 12 + column * column_width, row_h * (row + 2) + 10
        paint.text(image, keys, (left, baseline), font, view.color("status"))
        paint.text(image, text, (left + keys_width, baseline), font, (235, 235, 235))
    return image
