"""The browser's key names (KeyboardEvent.key) -> the key table's keys (app/ui/keys.py).

A character is itself; named keys are renamed here. A name neither one character nor in this table
is unknown (the tab answers with an error message).
"""
from app.errors import DeepVisError
from app.ui import keys

NAMED = {"ArrowLeft": "<Left>", "ArrowRight": "<Right>", "ArrowUp": "<Up>", "ArrowDown": "<Down>",
         "PageUp": "<PgUp>", "PageDown": "<PgDn>", "Escape": "<Esc>", "Enter": "<Enter>",
         "Backspace": "<BackSpace>"}


def key_code(browser_key) -> int:
    """The key table code of ``browser_key`` (e.g. "o", "B", "ArrowLeft"); DeepVisError when unknown."""
    if not isinstance(browser_key, str) or not browser_key:
        raise DeepVisError(f"key {browser_key!r}: not a key name")
    if len(browser_key) == 1:
        return keys.key_codes(browser_key)[0]
    if browser_key not in NAMED:
        raise DeepVisError(f"key {browser_key[:40]!r}: unknown key name (known: one character, "
                           f"{', '.join(NAMED)})")
    return keys.key_codes(NAMED[browser_key])[0]
