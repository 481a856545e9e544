"""The status pane: what is shown and how, the speed, and facts about the layer and the input.

Each line is a list of fields with a priority. A line that would pass the pane's width keeps its
most important fields (the layer and unit, random weights, freeze, the file and the siamese pair
first), shortens a long message or file name in the middle (its end, the file's name, stays) and
leaves out the least important ones; the fields kept stay in their order.
"""
from typing import List, NamedTuple

import numpy as np

from app.labels import class_name
from app.ui import draw as paint
from app.ui.compute import order_request
from app.views import registry

ORDER_SOURCE_NAMES = {"input": "this input", "dataset": "dataset"}
SEPARATOR = " | "
ELLIPSIS = ".."
MIN_ELIDED = 12   # characters an elided field keeps at least (else it is left out)


class Field(NamedTuple):
    text: str
    priority: int            # higher: kept longer
    elide: bool = False      # may be shortened in the middle rather than left out


def lines(view, width: int = None) -> tuple:
    """The two status lines, fitted to ``width`` pixels when given (what the pane draws and the tests read)."""
    fields = (first_fields(view), second_fields(view))
    if width is None:
        return tuple(SEPARATOR.join(field.text for field in line) for line in fields)
    return tuple(fit(line, width, lambda text: paint.text_width(text, view.font)) for line in fields)


def first_fields(view) -> List[Field]:
    state, net = view.state, view.net
    if state.class_entry is not None:   # the go-to-class entry takes the line while it is open
        return [Field(_entry_line(state), 100, elide=True)]
    fields = []
    if net.random_weights_seed is not None:
        fields.append(Field(f"RANDOM WEIGHTS (seed {net.random_weights_seed})", 100))
    entry = registry.shown(state.pattern, state.show_diffs)
    where = entry.tag or f"pattern ({entry.name})"
    fields.append(Field(f"{where} {net.pretty_names[state.layer]}:{state.unit}", 95, elide=True))
    if state.backprop_mode == "off":
        fields.append(Field("Back: off", 60))
    else:
        origin_layer, origin_unit = state.backprop_origin
        frozen = " frozen" if state.frozen_origin is not None else ""
        how = state.backprop_view
        about = registry.entry("back", state.backprop_mode).about
        if about is not None:
            how = f"{about(view.settings)}, {how}"
        fields.append(Field(f"Back: {state.backprop_mode} (from {net.pretty_names[origin_layer]}_{origin_unit}"
                            f"{frozen}, {how})", 60, elide=True))
    fields.append(Field(f"Boost: {state.indiv_boosts[state.indiv_boost]:g}/{state.gamma_boosts[state.gamma_boost]:g}",
                        40))
    fields.append(Field(f"{view.fps:4.1f} fps", 30))
    if state.debug and view.snapshot is not None:
        fields.append(Field(" ".join(f"{k} {v * 1000:.0f}ms" for k, v in view.snapshot.seconds.items()), 20, True))
    return fields


def second_fields(view) -> List[Field]:
    state, net = view.state, view.net
    shape = "x".join(str(d) for d in net.shapes[state.layer])
    field = net.receptive_fields.get(net.names[state.layer])
    fields = [Field(f"size {shape}", 50), Field(f"RF {field if field else '?'}", 45), Field(state.colormap, 20),
              Field(f"fit {state.fit_mode}", 15)]
    entry = registry.shown(state.pattern, state.show_diffs)
    if entry.origin and view.current is not None:   # where the mode starts: the frozen unit, else the top layer
        frozen = state.frozen_origin
        origin = net.names[frozen[0]] if frozen else net.names[-1]
        source = f"unit {frozen[1]}" if frozen else entry.origin
        fields.append(Field(f"{entry.name} of {pretty_name(net, origin)} {source}", 55, elide=True))
    if state.channel_order != "original":
        order = f"order {state.channel_order} ({ORDER_SOURCE_NAMES[state.order_source]})"
        snapshot = view.snapshot
        if snapshot is not None and isinstance(snapshot.order, str) and snapshot.request.order == order_request(state):
            order += f": {snapshot.order}"
        fields.append(Field(order, 55, elide=True))
    if view.frozen:
        fields.append(Field("FROZEN (f)", 92))
    frame = view.frame
    if frame is not None:
        counter = f" ({frame.index + 1}/{frame.count})" if frame.count > 1 else ""
        fields.append(Field(f"{frame.name}{counter}", 85, elide=True))
        if len(frame.images) > 1:
            pair = "pair: both, first | second" if view.pair is not None else f"pair: {state.siamese_view}"
            fields.append(Field(pair, 90))
        if frame.label is not None:
            fields.append(Field(f"truth: {_label_name(frame.label, net.labels)}", 70, elide=True))
    if view.message:
        fields.append(Field(view.message, 65, elide=True))
    if view.snapshot is not None and view.snapshot.backward_fallback and state.backprop_mode != "off":
        fields.append(Field(f"backward in NumPy: {view.snapshot.backward_fallback}", 64, elide=True))
    return fields


def fit(fields: List[Field], width: int, measure) -> str:
    """The fields joined with SEPARATOR in at most ``width`` pixels (as ``measure`` counts them):
    taken by priority, each whole if it fits in the room left, else shortened in the middle when it
    may be, else left out."""
    kept = {}
    for index in sorted(range(len(fields)), key=lambda i: -fields[i].priority):
        def joined(text):
            chosen = {**kept, index: text}
            return SEPARATOR.join(chosen[i] for i in sorted(chosen))
        text = fields[index].text
        if measure(joined(text)) > width:
            if not fields[index].elide:
                continue
            text = _elided(text, lambda candidate: measure(joined(candidate)) <= width)
            if text is None:
                continue
        kept[index] = text
    return SEPARATOR.join(kept[i] for i in sorted(kept))


def _elided(text: str, fits):
    """``text`` with its middle cut out (a third of it kept from the start, the rest from the end)
    as long as ``fits`` allows; None when not even MIN_ELIDED characters fit."""
    low, high, best = MIN_ELIDED, len(text) - 1, None
    while low <= high:
        keep = (low + high) // 2
        head = keep // 3
        candidate = text[:head] + ELLIPSIS + text[len(text) - (keep - head):]
        if fits(candidate):
            best, low = candidate, keep + 1
        else:
            high = keep - 1
    return best


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
    for row, line in enumerate(lines(view, width - 16)):
        paint.text(pane, line, (8, paint.line_height(font) * (row + 1)), font,
                   view.color("status") if row == 0 else view.color("text"), max_width=width - 16)
    return pane
