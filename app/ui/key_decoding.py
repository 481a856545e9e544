"""Raw cv2.waitKeyEx codes -> the code of the key meant, Shift included, on every HighGUI backend.

- Windows and macOS give an upper-case letter for Shift + letter: nothing to do.
- GTK gives keyval | (modifier state << 16): the keyval is already shifted; the state is masked
  off (Caps Lock alone, which also upper-cases the keyval, is undone).
- Qt (the pip wheel on Linux) gives the lower-case letter with or without Shift, and Shift itself
  as its own code just before. The X server's record of the press (app/ui/x11_keys.py) says
  whether Shift was down; without it, a letter within SHIFT_SECONDS after a Shift code is upper
  case (OpenCV keeps only the newest key of a burst, so that Shift code can be lost).
"""
import time
from typing import Callable, Optional

SHIFT_CODES = (0xFFE1, 0xFFE2)                 # Shift_L, Shift_R (X keysyms, as Qt gives them)
MODIFIER_CODES = tuple(range(0xFFE1, 0xFFEF))  # Shift, Control, Caps Lock, Meta, Alt, Super, Hyper
SHIFT_SECONDS = 1.0
GTK_SHIFT, GTK_LOCK = 1, 2                     # GdkModifierType bits, in the code's upper half


def gtk_keyval(code: int, known=()) -> int:
    """``code`` without GTK's modifier bits (codes in ``known``, e.g. Windows' arrows, are kept)."""
    if code <= 0xFFFF or code in known:
        return code
    keyval, state = code & 0xFFFF, code >> 16
    if state & GTK_LOCK and not state & GTK_SHIFT and ord("A") <= keyval <= ord("Z"):
        keyval += ord("a") - ord("A")
    return keyval


class KeyDecoder:
    """Turns each raw code into the code of the key meant; keeps the Qt Shift code between calls.

    ``shift_of(code)`` is the X server's answer (True / False / None for unknown) for the press
    behind ``code``; ``known`` are codes that are never modified (the key table's).
    """

    def __init__(self, shift_of: Optional[Callable[[int], Optional[bool]]] = None, known=(),
                 clock: Callable[[], float] = time.monotonic):
        self._shift_of, self._known, self._clock = shift_of, frozenset(known), clock
        self._shift_at = None

    def decode(self, code: int) -> Optional[int]:
        """The key's code (a letter typed with Shift as upper case), or None for no key and for a
        modifier pressed alone."""
        if code is None or code == -1:
            return None
        if code in MODIFIER_CODES:
            if code in SHIFT_CODES:
                self._shift_at = self._clock()
            return None
        code = gtk_keyval(code, self._known)
        if not ord("a") <= code <= ord("z"):
            return code
        shifted = self._shift_of(code) if self._shift_of is not None else None
        if shifted is None:
            shifted = self._shift_at is not None and self._clock() - self._shift_at <= SHIFT_SECONDS
        self._shift_at = None
        return code - ord("a") + ord("A") if shifted else code


def modifier_name(code: int) -> Optional[str]:
    """The name of a modifier key's code (Qt gives them alone), else None."""
    if code in SHIFT_CODES:
        return "Shift (a letter pressed with it is upper case)"
    if code in MODIFIER_CODES:
        return "Ctrl, Alt, Caps Lock or Super (ignored)"
    return None
