"""The window's panes: the rectangle layout and one draw function per pane, in one table.

Every pane module has ``draw(view, height, width) -> H x W x 3 uint8``: a pure function of a View
(the state, the newest snapshot, what the status line needs). Panes that take clicks also have
``hit(view, y, x, height, width) -> action or None`` (pane coordinates).
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from app.ui.panes import aux, back, buttons, control, help, input, jpgvis, layers, status
from app.ui.panes.view import NetInfo, View

__all__ = ["DRAW", "HIT", "NetInfo", "Rect", "View", "compose", "hit", "layout"]

DRAW: Dict[str, Callable] = {
    "input": input.draw, "aux": aux.draw, "back": back.draw, "status": status.draw,
    "control": control.draw, "layers": layers.draw, "jpgvis": jpgvis.draw, "buttons": buttons.draw,
}
HIT: Dict[str, Callable] = {"control": control.hit, "layers": layers.hit, "buttons": buttons.hit}


@dataclass(frozen=True)
class Rect:
    top: int
    left: int
    height: int
    width: int

    def contains(self, y: int, x: int) -> bool:
        return self.top <= y < self.top + self.height and self.left <= x < self.left + self.width


def layout(window_panes: dict, scale: float = 1.0) -> Dict[str, Rect]:
    """settings.window_panes {name: (top, left, height, width)} scaled by ``scale``; unknown names raise."""
    from app.errors import DeepVisError

    rects = {}
    for name, box in window_panes.items():
        if name not in DRAW:
            raise DeepVisError(f"settings: window_panes: unknown pane {name!r}; panes: {', '.join(DRAW)}")
        rects[name] = Rect(*(int(round(v * scale)) for v in box))
    return rects


def window_size(rects: Dict[str, Rect]) -> Tuple[int, int]:
    """(height, width) of the window: the largest pane extent."""
    return (max(r.top + r.height for r in rects.values()), max(r.left + r.width for r in rects.values()))


def compose(view: View, rects: Dict[str, Rect]) -> np.ndarray:
    """The whole window: every pane drawn in its rectangle, then the help screen over it when on."""
    height, width = window_size(rects)
    window = np.zeros((height, width, 3), np.uint8)
    for name, rect in rects.items():
        pane = DRAW[name](view, rect.height, rect.width)
        window[rect.top:rect.top + rect.height, rect.left:rect.left + rect.width] = pane
    if view.state.help:
        window = help.draw(view, window)
    return window


def hit(view: View, rects: Dict[str, Rect], y: int, x: int) -> Optional[object]:
    """The action of a click at window pixel (y, x), or None."""
    for name, rect in rects.items():
        if name in HIT and rect.contains(y, x):
            return HIT[name](view, y - rect.top, x - rect.left, rect.height, rect.width)
    return None
