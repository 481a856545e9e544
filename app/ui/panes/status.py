"""The status pane: what is shown and how, the speed, and facts about the layer and the input."""
import numpy as np

from app.labels import class_name
from app.ui import draw as paint
from app.ui.compute import order_request

ORDER_SOURCE_NAMES = {"input": "this input", "dataset": "dataset"}


def lines(view) -> tuple:
    """The two status lines (also what the tests read)."""
    state, net = view.state, view.net
    where = f"pattern ({state.pattern})" if state.pattern != "off" else ("back" if state.show_diffs else "fwd")
    first = f"{where} {net.pretty_names[state.layer]}:{state.unit}"
    if state.backprop_mode == "off":
        first += " | Back: off"
    else:
        origin_layer, origin_unit = state.backprop_origin
        frozen = " frozen" if state.frozen_origin is not None else ""
        how = state.backprop_view
        if state.backprop_mode == "occlusion":
            how = "patch {}/stride {}/fill {}, ".format(*state.occlusion[:3]) + how
        first += f" | Back: {state.backprop_mode} (from {net.pretty_names[origin_layer]}_{origin_unit}{frozen}, {how})"
    first += (f" | Boost: {state.indiv_boosts[state.indiv_boost]:g}/{state.gamma_boosts[state.gamma_boost]:g}"
              f" | {view.fps:4.1f} fps")
    if state.debug and view.snapshot is not None:
        first += " | " + " ".join(f"{k} {v * 1000:.0f}ms" for k, v in view.snapshot.seconds.items())
    shape = "x".join(str(d) for d in net.shapes[state.layer])
    field = net.receptive_fields.get(net.names[state.layer])
    second = f"size {shape} | RF {field if field else '?'} | {state.colormap} | fit {state.fit_mode}"
    if state.pattern == "weight grads":
        request = view.current
        origin = request.weight_origin if request is not None and request.weight_origin else None
        if origin is not None:
            source = f"unit {origin[1]}" if origin[1] is not None else "strongest / second / weakest (d: one)"
            second += f" | weight grads of {pretty_name(net, origin[0])} {source}"
    if state.channel_order != "original":
        second += f" | order {state.channel_order} ({ORDER_SOURCE_NAMES[state.order_source]})"
        snapshot = view.snapshot
        if snapshot is not None and isinstance(snapshot.order, str) and snapshot.request.order == order_request(state):
            second += f": {snapshot.order}"
    frame = view.frame
    if frame is not None:
        counter = f" ({frame.index + 1}/{frame.count})" if frame.count > 1 else ""
        second += f" | {frame.name}{counter}"
        if len(frame.images) > 1:
            second += " | pair: both, first | second" if view.pair is not None else f" | pair: {state.siamese_view}"
        if frame.label is not None:
            second += f" | truth: {_label_name(frame.label, net.labels)}"
    if view.message:
        second += f" | {view.message}"
    if state.class_entry is not None:
        first = _entry_line(state)
    return first, second


def _entry_line(state) -> str:
    """What the go-to-class entry holds and what Enter would pick."""
    matches = state.class_matches
    picks = (f"Enter picks {matches[state.picked]} {class_name(state.labels, matches[state.picked])}"
             if matches else "no class matches")
    return f"go to class: {state.class_entry}_ | {picks} | Esc cancels"


def pretty_name(net, layer: str) -> str:
    """The layer list's name of ``layer``."""
    return net.pretty_names[net.names.index(layer)]


def _label_name(label, labels) -> str:
    if isinstance(label, int) and labels and 0 <= label < len(labels):
        return f"{labels[label]} ({label})"
    return str(label)


def draw(view, height: int, width: int) -> np.ndarray:
    pane = np.full((height, width, 3), 20, np.uint8)
    font = view.font
    for row, line in enumerate(lines(view)):
        paint.text(pane, line, (8, paint.line_height(font) * (row + 1)), font,
                   view.color("status") if row == 0 else view.color("text"))
    return pane
