"""The key map: one table of (action, keys, help), platform key codes, and the help screen text.

Keys are single characters or names in angle brackets ("<Left>", "<PgDn>", "<Esc>"). A named key
has a code per platform (OpenCV's waitKeyEx differs between GTK, Qt, macOS and Windows), and
every code of every platform is accepted, so the same table works everywhere; run
``run_toolbox.py --test-keys`` to see what your keyboard sends.
"""
from typing import Callable, Dict, Iterator, Tuple

from app.errors import DeepVisError
from app.ui.state import BACKPROP_MODES, PATTERNS, TOGGLED_METHOD, WEIGHT_PATTERNS

# action, keys, help (the help screen lists them in this order)
KEY_TABLE = (
    ("help", "h", "show / hide this help screen"),
    ("quit", "q", "quit"),
    ("reset", "<Esc>", "reset: first layer, unit 0, backprop off, default boost"),
    ("freeze_camera", "f", "freeze / unfreeze the camera or video"),
    ("toggle_camera", "c", "switch between the camera and the files"),
    ("browser_camera", "C", "the browser's camera as input / back to the files (the app in a browser, run_toolbox.py --web)"),
    ("next_image", "e <PgDn>", "next image (switches to the files)"),
    ("previous_image", "w <PgUp>", "previous image (switches to the files)"),
    ("toggle_fit", "0", "fit images: crop to the model's aspect ratio / stretch"),
    ("cycle_debug", "5", "debug level: timings in the status line"),
    ("left", "<Left> j", "cursor left (on the layer list: previous layer)"),
    ("right", "<Right> l", "cursor right (on the layer list: next layer)"),
    ("up", "<Up> i", "cursor up (from the top row: to the layer list)"),
    ("down", "<Down> k", "cursor down (from the layer list: to the units)"),
    ("fast_left", "J", "cursor left by 3"),
    ("fast_right", "L", "cursor right by 3"),
    ("fast_up", "I", "cursor up by 3"),
    ("fast_down", "K", "cursor down by 3"),
    ("previous_layer", "u U", "previous layer"),
    ("next_layer", "o O", "next layer"),
    ("cycle_zoom", "z", "zoom: normal / selected unit / backprop pane"),
    ("freeze_backprop", "d", "freeze / unfreeze the backprop origin at this layer and unit"),
    ("toggle_diffs", "a", "layers pane: forward activations / backward diffs"),
    ("next_gamma_boost", "t", "gamma boost: next setting"),
    ("next_indiv_boost", "T", "per-channel boost: next setting"),
    ("toggle_labels", "8", "show / hide the label predictions"),
    ("toggle_unit_jpgs", "9", "show / hide the per-unit images"),
    ("next_pattern", "s", "pattern mode: " + " / ".join(PATTERNS)),
    ("previous_pattern", "S", "pattern mode: previous"),
    ("next_weights_view", "g", "weights view: " + " / ".join(WEIGHT_PATTERNS) + " / off"),
    ("previous_weights_view", "G", "weights view: previous"),
    ("next_channel_order", "p", "layers pane tile order: original / k-means clusters / first principal component"),
    ("next_order_source", "P", "tile order computed from: this input / the dataset (find_maxes statistics)"),
    ("toggle_volume_view", "3", "aux pane: the layer's activation as a rotating 3-D volume (max projection)"),
    ("export_volume", "4", "write the layer's activation as a volume (.nrrd and .npy) to volume_dir"),
    ("save_view", "W", "save view: write the window's picture as a PNG to save_view_dir"),
    ("toggle_first_image", "1", "per-unit images: first image / all (montage)"),
    ("open_atlas", "A", "atlas: the selected unit's page (in a browser app: a new tab; in the window: its file:// URL, opened where a browser runs)"),
    ("optimize_unit", "2", "optimize the selected unit's image now (in the background; the jpgvis pane shows it improve)"),
    ("next_backprop_mode", "b", "backprop mode: " + " / ".join(BACKPROP_MODES)),
    ("previous_backprop_mode", "B", "backprop mode: previous"),
    ("toggle_occlusion", "x", f"{TOGGLED_METHOD} saliency in the back pane on / off (slow: freeze a camera with f)"),
    ("next_backprop_view", "n", "backprop view: raw / gray / norm / normblur / sum>0 / histogram"),
    ("previous_backprop_view", "N", "backprop view: previous"),
    ("next_colormap", "m", "colormap: next"),
    ("previous_colormap", "M", "colormap: previous"),
    ("cycle_siamese_view", "v", "siamese pairs: first / second / both (a batch of two, shown side by side)"),
    ("toggle_score_overlay", "r", "score overlay: each tile's maximum on the tiles"),
    ("next_input_overlay", "y", "input overlay: off / over active / over inactive"),
    ("previous_input_overlay", "Y", "input overlay: previous"),
    ("class_layer", ".", "class layer: the logits (backprop from a class starts here) / the probabilities"),
    ("go_to_class", "/", "go to class: type part of a label or an index, Enter selects it and backprops from it"),
)
# While the go-to-class entry is open it takes every key: characters are typed, and these keys act.
ENTRY_KEYS = {"<Enter>": "entry_accept", "<Esc>": "entry_cancel", "<BackSpace>": "entry_erase",
              "<Down>": "entry_next", "<Up>": "entry_previous"}

# Codes of named keys as cv2.waitKeyEx returns them: GTK/X11, Qt, macOS (Cocoa), Windows.
NAMED_KEY_CODES = {
    "<Esc>": (27,),
    "<Left>": (65361, 0x1000012, 63234, 2424832),
    "<Up>": (65362, 0x1000013, 63232, 2490368),
    "<Right>": (65363, 0x1000014, 63235, 2555904),
    "<Down>": (65364, 0x1000015, 63233, 2621440),
    "<PgUp>": (65365, 0x1000016, 63276, 2162688),
    "<PgDn>": (65366, 0x1000017, 63277, 2228224),
    "<Enter>": (13, 10, 65293, 65421, 0x1000004, 0x1000005),
    "<BackSpace>": (8, 127, 65288, 0x1000003),
}


def key_codes(key: str) -> Tuple[int, ...]:
    """Every code that means ``key`` on some platform."""
    if key in NAMED_KEY_CODES:
        return NAMED_KEY_CODES[key]
    if len(key) != 1:
        raise DeepVisError(f"keys: {key!r} is neither one character nor a named key "
                           f"({', '.join(NAMED_KEY_CODES)})")
    return (ord(key),)


def build_code_map(table=KEY_TABLE) -> Dict[int, str]:
    """key code -> action; a key or code bound twice raises DeepVisError."""
    by_code, by_key = {}, {}
    for action, keys, _ in table:
        for key in keys.split():
            if key in by_key:
                raise DeepVisError(f"keys: {key!r} is bound to both {by_key[key]} and {action}")
            by_key[key] = action
            for code in key_codes(key):
                if code in by_code:
                    raise DeepVisError(f"keys: code {code} ({key!r}) is bound to both "
                                       f"{by_code[code]} and {action}")
                by_code[code] = action
    return by_code


CODE_MAP = build_code_map()


def action_for(code: int, typing: bool = False):
    """The action of a cv2.waitKeyEx code, or None (no key: -1, or an unbound key); ``typing``:
    the go-to-class entry is open and takes the key (see entry_action)."""
    if typing:
        return entry_action(code)
    return None if code is None else CODE_MAP.get(code)


ENTRY_CODES = {code: action for key, action in ENTRY_KEYS.items() for code in key_codes(key)}


def entry_action(code: int):
    """A key in the go-to-class entry: ("entry_type", character) for a printable one, an ENTRY_KEYS
    action, or None. Modifier bits above the key code (Shift) are dropped."""
    if code is None or code < 0:
        return None
    action = ENTRY_CODES.get(code) or ENTRY_CODES.get(code & 0xFFFF)
    if action is not None:
        return action
    character = code & 0xFFFF
    return ("entry_type", chr(character)) if 32 <= character < 127 else None


def parse_sequence(text: str) -> Tuple[str, ...]:
    """A --keys string ("oo<Right>bn") as a tuple of keys ("o", "o", "<Right>", "b", "n")."""
    keys, position = [], 0
    while position < len(text):
        if text[position] == "<" and ">" in text[position:]:
            end = text.index(">", position) + 1
            name = text[position:end]
            if name not in NAMED_KEY_CODES:
                raise DeepVisError(f"--keys: unknown key {name}; named keys: {', '.join(NAMED_KEY_CODES)}")
            keys.append(name)
            position = end
        else:
            keys.append(text[position])
            position += 1
    return tuple(keys)


def key_actions(text: str, typing: Callable[[], bool]) -> Iterator:
    """The actions of a --keys string one by one; ``typing()`` says whether the go-to-class entry is
    open (the caller carries out each action before the next is asked for), so "/espresso<Enter>"
    types "espresso" and picks it. A key bound to nothing raises DeepVisError."""
    for key in parse_sequence(text):
        entry_open = typing()
        action = action_for(key_codes(key)[0], entry_open)
        if action is None and not entry_open:
            raise DeepVisError(f"--keys: {key!r} is bound to nothing (press h in the app for the key map)")
        if action is not None:
            yield action


def help_entries(table=KEY_TABLE) -> Tuple[Tuple[str, str], ...]:
    """The help screen: (keys, what they do) per action, in the table's order."""
    return tuple(("  ".join(keys.split()), text) for _, keys, text in table)


def describe_code(code: int) -> str:
    """What a raw code means, for --test-keys calibration."""
    names = [key for key, codes in NAMED_KEY_CODES.items() if code in codes]
    if not names and 32 <= code < 127:
        names = [repr(chr(code))]
    action = action_for(code)
    return f"code {code} (0x{code:x}): {', '.join(names) or 'unknown key'} -> {action or 'no action'}"
