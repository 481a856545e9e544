"""README's key table and docs/app.md's list every binding of the key table, with its help line."""
from pathlib import Path

import pytest

from app.ui.keys import KEY_TABLE

ROOT = Path(__file__).resolve().parents[1]


def table_row(keys: str, help_text: str) -> str:
    return "| " + " ".join(f"`{key}`" for key in keys.split()) + f" | {help_text} |"


def test_readme_key_table_is_the_key_table():
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    expected = [table_row(keys, help_text) for _, keys, help_text in KEY_TABLE]
    assert rows[:len(expected)] == expected


@pytest.mark.parametrize("action, keys, help_text", KEY_TABLE)
def test_docs_app_names_every_key(action, keys, help_text):
    text = (ROOT / "docs" / "app.md").read_text()
    for key in keys.split():
        assert f"`{key}`" in text, f"docs/app.md does not mention key {key} ({action})"
