"""Raw waitKeyEx codes -> keys with Shift, for every backend's way of reporting it (no window)."""
from app.ui import keys
from app.ui.key_decoding import KeyDecoder, gtk_keyval
from app.ui.window import calibration_line

SHIFT_L, SHIFT_R, CONTROL_L = 0xFFE1, 0xFFE2, 0xFFE3


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def decode_all(decoder, codes, clock=None, step=0.02):
    """Each code's decoded key as text ('' for None), ``step`` seconds apart."""
    out = []
    for code in codes:
        if clock is not None:
            clock.now += step
        decoded = decoder.decode(code)
        out.append("" if decoded is None else chr(decoded) if decoded < 0x110000 else hex(decoded))
    return out


def test_qt_shift_code_then_letter_is_upper_case():
    clock = Clock()
    decoder = KeyDecoder(clock=clock, known=keys.CODE_MAP)
    assert decode_all(decoder, [ord("b"), SHIFT_L, ord("b"), ord("b"), SHIFT_R, ord("n")], clock) == \
        ["b", "", "B", "b", "", "N"]   # Shift counts for the one letter after it


def test_qt_shift_code_expires():
    clock = Clock()
    decoder = KeyDecoder(clock=clock)
    assert decode_all(decoder, [SHIFT_L, ord("s")], clock, step=0.5) == ["", "S"]
    assert decode_all(decoder, [SHIFT_L, ord("s")], clock, step=1.5) == ["", "s"]


def test_other_modifiers_and_keys_leave_the_shift_code_alone():
    clock = Clock()
    decoder = KeyDecoder(clock=clock, known=keys.CODE_MAP)
    assert decode_all(decoder, [SHIFT_L, CONTROL_L, ord("t")], clock) == ["", "", "T"]
    assert decoder.decode(65361) == 65361 and keys.action_for(65361) == "left"   # Shift + Left is Left
    assert decode_all(decoder, [ord("1"), -1, None], clock) == ["1", "", ""]


def test_the_x_servers_answer_wins_over_timing():
    answers = {ord("j"): True, ord("b"): False, ord("n"): None}
    clock = Clock()
    decoder = KeyDecoder(shift_of=answers.get, clock=clock)
    # j: Shift held (no Shift code since OpenCV lost it); b: Shift code seen, but the press had none;
    # n: the server saw no such press, so the Shift code decides
    assert decode_all(decoder, [ord("j"), SHIFT_L, ord("b"), SHIFT_L, ord("n")], clock) == ["J", "", "b", "", "N"]


def test_gtk_modifier_bits_are_masked():
    decoder = KeyDecoder(known=keys.CODE_MAP)
    assert decoder.decode(0x10042) == ord("B")          # Shift + b: GTK shifts the keyval itself
    assert decoder.decode(0x100062) == ord("b")         # Num Lock on
    assert decoder.decode(0x20042) == ord("b")          # Caps Lock alone is not Shift
    assert decoder.decode(0x1FF51) == 65361             # Shift + Left
    assert gtk_keyval(2424832, keys.CODE_MAP) == 2424832   # Windows' Left keeps its high bits


def test_windows_and_macos_upper_case_passes():
    decoder = KeyDecoder(known=keys.CODE_MAP)
    assert [keys.action_for(decoder.decode(ord(key))) for key in "BNSTJ"] == [
        "previous_backprop_mode", "previous_backprop_view", "previous_pattern", "next_indiv_boost", "fast_left"]


def test_calibration_lines_name_shift_and_the_upper_case_action():
    assert "Shift" in calibration_line(SHIFT_L, None)
    line = calibration_line(ord("b"), ord("B"))
    assert "0x62" in line and "'B'" in line and "previous_backprop_mode" in line
    assert calibration_line(ord("b"), ord("b")).endswith("next_backprop_mode")
