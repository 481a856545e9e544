"""Loading settings: settings.py defaults, then settings_local.py, then an optional --settings file.

Settings files are the user's own Python (as in the original toolbox), so a layer pretty-name
function can be given; files from elsewhere (models, images, maxes.json) are never executed.
"""
import runpy
import types
from pathlib import Path

from app.errors import DeepVisError

ROOT = Path(__file__).resolve().parents[1]


def _public(namespace: dict) -> dict:
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and not isinstance(v, types.ModuleType)}


def load_settings(extra_file=None, **overrides) -> types.SimpleNamespace:
    """All settings as attributes; unknown names in override files are refused (typos)."""
    values = _public(runpy.run_path(str(ROOT / "settings.py")))
    files = [ROOT / "settings_local.py"] + ([Path(extra_file)] if extra_file else [])
    for path in files:
        if path == ROOT / "settings_local.py" and not path.exists():
            continue
        if not path.is_file():
            raise DeepVisError(f"{path}: no such settings file")
        _merge(values, _public(runpy.run_path(str(path))), path)
    _merge(values, overrides, "arguments")
    return types.SimpleNamespace(**values)


def _merge(values: dict, new: dict, origin) -> None:
    for key, value in new.items():
        if key not in values:
            raise DeepVisError(f"{origin}: unknown setting {key!r} (see settings.py for every name)")
        values[key] = value
