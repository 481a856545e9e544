"""Classes in two keystrokes: `.` jumps to the logits, `/` opens the go-to-class entry (pure state
and key decoding, no window), and the aux pane names a class unit and draws a vector unit as a bar."""
import numpy as np
import pytest

from app.ui import keys
from app.ui.state import AppState, LayerInfo, class_matches, next_state

LABELS = ("tench", "espresso machine", "cup", "espresso", "coffee mug", "hot pot", "Espresso-maker")


def class_state(**fields) -> AppState:
    layers = (LayerInfo("conv1", 8, (4, 4)), LayerInfo("logits", 7), LayerInfo("prob", 7))
    return AppState(layers=layers, labels=LABELS, class_layers=(1, 2), **fields)


def typed(state, text: str):
    """``state`` after the keys of ``text`` (a --keys string) went through the entry's decoding."""
    for action in keys.key_actions(text, lambda: state.class_entry is not None):
        state = next_state(state, action)
    return state


def test_matches_rank_the_index_then_equal_prefix_word_and_substring():
    assert class_matches(LABELS, 7, "espresso") == (3, 1, 6)       # equal, then prefix in class order
    assert class_matches(LABELS, 7, "maker") == (6,)                # a word of "Espresso-maker"
    assert class_matches(LABELS, 7, "ot") == (5,)                   # inside "hot pot"
    assert class_matches(LABELS, 7, "2") == (2,)                    # an index
    assert class_matches(LABELS, 7, "9") == ()                      # out of range, no label has it
    assert class_matches((), 1000, "967") == (967,)                 # a net without labels
    assert class_matches(LABELS, 7, "  ") == ()


def test_typing_a_label_and_enter_selects_the_logit_with_the_backprop_frozen_on_it():
    state = typed(class_state(), "/espresso")
    assert state.class_entry == "espresso" and state.class_matches[state.picked] == 3
    picked = typed(state, "<Enter>")
    assert (picked.layer, picked.unit, picked.frozen_origin) == (1, 3, (1, 3))
    assert picked.backprop_mode == "grad" and picked.class_entry is None and not picked.cursor_on_layers
    kept = typed(class_state(backprop_mode="guided"), "/cup<Enter>")
    assert (kept.unit, kept.backprop_mode) == (2, "guided")        # a chosen backprop mode stays


def test_the_entry_takes_every_key_until_enter_or_esc():
    state = typed(class_state(), "/ozb")                            # next layer, zoom, backprop: typed
    assert state.class_entry == "ozb" and state.layer == 0 and state.zoom == "normal"
    assert typed(state, "<BackSpace><BackSpace>").class_entry == "o"
    assert typed(state, "<Esc>") == class_state()                  # nothing else changed
    assert typed(class_state(), "/<BackSpace><BackSpace>").class_entry == ""
    stuck = typed(class_state(), "/zzz<Enter>")                     # nothing matches: the entry stays open
    assert stuck.class_entry == "zzz" and stuck.layer == 0
    assert typed(stuck, "<Esc>o").layer == 1                        # closed: keys act again


def test_up_and_down_choose_which_match_enter_picks():
    state = typed(class_state(), "/espresso<Down><Down><Down>")
    assert state.picked == 2                                        # clamped to the last match
    assert typed(state, "<Up><Enter>").unit == 1


def test_the_class_layer_key_goes_to_the_logits_then_the_probabilities_keeping_the_class():
    state = typed(class_state(unit=5, cursor_on_layers=True), ".")
    assert (state.layer, state.unit, state.cursor_on_layers) == (1, 5, False)
    assert typed(state, ".").layer == 2 and typed(state, "..").layer == 1
    no_classes = AppState(layers=class_state().layers)
    assert typed(no_classes, ".") == no_classes
    assert typed(class_state(), "/cup<Enter><Esc>").class_layers == (1, 2)   # reset keeps the classes


def test_entry_key_decoding():
    assert keys.action_for(ord("o")) == "next_layer"
    assert keys.action_for(ord("o"), typing=True) == ("entry_type", "o")
    assert keys.action_for(ord("E") | 0x10000, typing=True) == ("entry_type", "E")   # Shift's modifier bit
    for code in keys.key_codes("<Enter>"):
        assert keys.action_for(code, typing=True) == "entry_accept"
    assert keys.action_for(27, typing=True) == "entry_cancel"
    assert keys.action_for(-1, typing=True) is None and keys.action_for(65361, typing=True) is None
    assert tuple(keys.key_actions("./", lambda: False)) == ("class_layer", "go_to_class")
    with pytest.raises(Exception, match="bound to nothing"):
        tuple(keys.key_actions("<Enter>", lambda: False))                           # Enter means nothing outside the entry


def spread(pane) -> float:
    """The 1st-99th percentile spread of a pane's gray levels."""
    gray = pane.mean(axis=2)
    return float(np.percentile(gray, 99) - np.percentile(gray, 1))


def test_a_class_unit_is_named_by_its_label():
    from app.ui.panes import NetInfo, View, aux
    from tests import ui_support

    info = NetInfo("m", ("conv1", "logits", "prob"), ("conv1", "logits", "prob"), ((8, 4, 4), (7,), (7,)),
                   labels=LABELS, class_layers=("logits", "prob"))
    settings = ui_support.settings()
    assert aux.unit_caption(View(class_state(layer=1, unit=3), info, settings), 3) == "logits:3 espresso"
    assert aux.unit_caption(View(class_state(layer=0, unit=3), info, settings), 3) == "conv1:3"


def test_the_entry_and_a_picked_class_render_in_the_aux_pane(testdata, tmp_path):
    """mnist-8 (no labels): its 10-value output is the class layer; "/7" lists class 7, Enter
    selects it and the aux pane draws the unit as a value bar, not a 1 x 1 square."""
    from tests import ui_support
    from tests.test_ui_screenshot import render

    net, digits = ui_support.mnist_net(), ui_support.write_images(tmp_path / "digits", 1)
    _, entry = render(net, digits, "/7", tmp_path, "entry.png")
    highlighted = np.all(entry["aux"] == ui_support.settings().ui_colors["bar"], axis=2)
    assert 0.02 < highlighted.mean() < 0.2 and spread(entry["aux"]) > 90    # one marked row, readable
    _, picked = render(net, digits, "/7<Enter>", tmp_path, "picked.png")
    aux = picked["aux"]
    colors = ui_support.settings().ui_colors
    bar = np.all(aux == colors["bar"], axis=2) | np.all(aux == colors["negative"], axis=2)
    assert bar.any(axis=1).sum() >= 20 and spread(aux) > 90                  # a bar, at least 20 rows tall
    assert not np.array_equal(picked["back"], entry["back"])                 # backprop is on, from class 7
