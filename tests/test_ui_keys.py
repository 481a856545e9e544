"""The key table: no key bound twice, every action has a transition, an input or an export action, help text,
platform codes, and the --keys sequence syntax."""
import pytest

from app.errors import DeepVisError
from app.ui import keys
from app.ui.state import EXPORT_ACTIONS, INPUT_ACTIONS, MOVES, TRANSITIONS


def test_every_action_does_something():
    for action, _, _ in keys.KEY_TABLE:
        assert action in TRANSITIONS or action in MOVES or action in INPUT_ACTIONS or action in EXPORT_ACTIONS, action


def test_double_binding_is_rejected():
    table = keys.KEY_TABLE + (("extra", "q", "a second meaning for q"),)
    with pytest.raises(DeepVisError, match="'q' is bound to both quit and extra"):
        keys.build_code_map(table)


def test_arrows_work_on_linux_and_macos():
    for linux, mac, action in ((65361, 63234, "left"), (65363, 63235, "right"), (65362, 63232, "up"),
                               (65364, 63233, "down"), (65365, 63276, "previous_image"),
                               (65366, 63277, "next_image")):
        assert keys.action_for(linux) == keys.action_for(mac) == action


def test_arikpoz_meaning_wins_on_conflicts():
    assert keys.action_for(ord("b")) == "next_backprop_mode"
    assert keys.action_for(ord("n")) == "next_backprop_view"
    assert keys.action_for(ord("m")) == "next_colormap"
    assert keys.action_for(ord("s")) == "next_pattern"


def test_both_originals_shared_keys():
    expected = {"f": "freeze_camera", "c": "toggle_camera", "e": "next_image", "w": "previous_image",
                "h": "help", "0": "toggle_fit", "5": "cycle_debug", "q": "quit", "z": "cycle_zoom",
                "d": "freeze_backprop", "a": "toggle_diffs", "t": "next_gamma_boost", "T": "next_indiv_boost",
                "8": "toggle_labels", "9": "toggle_unit_jpgs", "u": "previous_layer", "o": "next_layer",
                "J": "fast_left", "j": "left", "1": "toggle_first_image", "v": "cycle_siamese_view",
                "y": "next_input_overlay", "r": "toggle_score_overlay"}
    for key, action in expected.items():
        assert keys.action_for(ord(key)) == action, key
    assert keys.action_for(27) == "reset"


def test_unbound_and_no_key():
    assert keys.action_for(-1) is None
    assert keys.action_for(ord("Q")) is None


def test_help_lists_every_action_once():
    entries = keys.help_entries()
    assert len(entries) == len(keys.KEY_TABLE)
    assert any(shown == "e  <PgDn>" for shown, _ in entries)
    for key, words in (("x", "occlusion"), ("g", "filters"), ("p", "principal component"), ("P", "dataset")):
        assert any(shown.split()[0] == key and words in text for shown, text in entries)


def test_sequence_parsing():
    assert keys.parse_sequence("ob<Right><PgDn>n") == ("o", "b", "<Right>", "<PgDn>", "n")
    assert tuple(keys.key_actions("o<Down>", lambda: False)) == ("next_layer", "down")
    with pytest.raises(DeepVisError, match="unknown key <Home>"):
        keys.parse_sequence("<Home>")
    with pytest.raises(DeepVisError, match="bound to nothing"):
        tuple(keys.key_actions("Q", lambda: False))


def test_describe_code_for_calibration():
    assert "Left" in keys.describe_code(65361) and "left" in keys.describe_code(65361)
    assert "unknown key" in keys.describe_code(12345678)
