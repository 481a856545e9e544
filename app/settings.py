"""Loading settings: settings.py defaults, then settings_local.py, then an optional --settings file.

Settings files are the user's own Python (as in the original toolbox), so a layer pretty-name
function can be given; files from elsewhere (models, images, maxes.json) are never executed. A file
that fails (a syntax error, an exception while it runs, a name settings.py does not know) gives one
line naming the file, the line and the name, with the nearest known name for a typo.
"""
import difflib
import runpy
import traceback
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
        _merge(values, _run(path), path)
    _merge(values, overrides, "arguments")
    return types.SimpleNamespace(**values)


def _run(path: Path) -> dict:
    """The public names a settings file defines; its failure as one line naming file and line."""
    try:
        return _public(runpy.run_path(str(path)))
    except SyntaxError as error:   # IndentationError and TabError included
        where = f"line {error.lineno}" if error.lineno else "not Python"
        raise DeepVisError(f"{path}: {where}: {error.msg}") from None
    except (Exception, SystemExit) as error:   # a settings file has no business ending the program
        line = next((frame.lineno for frame in reversed(traceback.extract_tb(error.__traceback__))
                     if frame.filename == str(path)), None)
        what = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        raise DeepVisError(f"{path}: {f'line {line}' if line else 'not Python'}: {what}") from None


def _merge(values: dict, new: dict, origin) -> None:
    for key, value in new.items():
        if key not in values:
            raise DeepVisError(f"{origin}{_line_of(origin, key)}: unknown setting {key!r} "
                               f"({_suggestion(key, values)}settings.py lists every name)")
        values[key] = value


def _suggestion(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _line_of(origin, name: str) -> str:
    """Where the settings file assigns ``name`` (its first line doing so), as ': line N'."""
    if not isinstance(origin, Path):
        return ""
    try:
        lines = origin.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    number = next((n for n, line in enumerate(lines, 1) if line.lstrip().startswith(name)
                   and line.lstrip()[len(name):].lstrip().startswith(("=", ":"))), None)
    return f": line {number}" if number else ""
