"""Imports go down the layers only, and app/ has no import cycle.

Every import of app/, tools/, bench/ and run_toolbox.py counts, lazy ones inside functions too.
``from package import name`` imports the module package.name where there is one, else the package;
a package's __init__ that Python runs on the way to a submodule is not counted (app.net's
__init__ is the facade, and its submodules below it import each other through it).
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("app", "tools", "bench", "run_toolbox.py")

# Lowest first: a module imports modules of its own layer and of the layers before it, never after.
# "x.*" is every module below package x; the most specific entry names a module's layer.
LAYERS = (
    ("base", ("app", "app.errors", "app.files", "app.paths", "app.settings", "app.labels", "app.fetch")),
    ("importer/runtime", ("app.net.*", "app.models", "app.models.*", "app.inputs", "app.inputs.*")),
    ("autodiff", ("app.net.autodiff", "app.net.autodiff.*")),
    ("net facade", ("app.net", "app.net.net", "app.net.run", "app.net.receptive_field")),
    ("offline/views", ("app.offline", "app.offline.*", "app.views", "app.views.*", "app.unit_images",
                       "app.atlas", "app.atlas.*")),
    ("ui", ("app.ui", "app.ui.*", "app.web", "app.web.*")),
    ("entry points", ("tools", "tools.*", "bench", "bench.*", "run_toolbox")),
)


def modules_under(root: Path) -> dict:
    """Module name -> file, for every Python file of SOURCES under ``root``."""
    found = {}
    for source in SOURCES:
        path = root / source
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            parts = file.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def layer_of(module: str) -> int:
    """Index in LAYERS of the most specific entry naming ``module``, None where none does."""
    best, best_rank = None, None
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if pattern == module:
                rank = (1, len(pattern))
            elif pattern.endswith(".*") and module.startswith(pattern[:-1]):
                rank = (0, len(pattern))
            else:
                continue
            if best_rank is None or rank > best_rank:
                best, best_rank = index, rank
    return best


def imports_of(module: str, file: Path, known: dict) -> list:
    """(line, imported module) for every import of a project module in ``file``."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            targets = [_known_prefix(alias.name, known) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else _known_prefix(base, known)
                       for alias in node.names]
        else:
            continue
        found += [(node.lineno, target) for target in dict.fromkeys(targets) if target and target != module]
    return found


def _known_prefix(name: str, known: dict):
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def upward_imports(root: Path) -> list:
    """One line per import that goes up the layers, or per module no layer names."""
    known = modules_under(root)
    problems = [f"{file.relative_to(root)}: module {module} is in no layer of LAYERS"
                for module, file in known.items() if layer_of(module) is None]
    for module, file in known.items():
        here = layer_of(module)
        for line, target in imports_of(module, file, known):
            there = layer_of(target)
            if here is not None and there is not None and there > here:
                problems.append(f"{file.relative_to(root)}:{line}: {module} ({LAYERS[here][0]}) imports "
                                f"{target} ({LAYERS[there][0]})")
    return problems


def import_cycles(root: Path, package: str = "app") -> list:
    """Each cycle among the modules of ``package``, as the modules along it."""
    known = modules_under(root)
    graph = {module: sorted({target for _, target in imports_of(module, file, known)
                             if target == package or target.startswith(package + ".")})
             for module, file in known.items() if module == package or module.startswith(package + ".")}
    cycles, done = [], set()
    for start in sorted(graph):
        path, on_path = [], set()

        def visit(module):
            if module in on_path:
                cycles.append(path[path.index(module):] + [module])
                return
            if module in done:
                return
            path.append(module)
            on_path.add(module)
            for target in graph.get(module, ()):
                visit(target)
            on_path.discard(path.pop())
            done.add(module)

        visit(start)
    return cycles


def test_no_import_goes_up_the_layers():
    assert upward_imports(ROOT) == []


def test_app_has_no_import_cycle():
    assert import_cycles(ROOT) == []


def write(root: Path, name: str, text: str = "") -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_rule_reports_an_upward_import_and_a_cycle(tmp_path):
    for package in ("app", "app/net", "app/net/autodiff", "app/ui", "tools"):
        write(tmp_path, f"{package}/__init__.py")
    write(tmp_path, "app/errors.py")
    write(tmp_path, "app/net/net.py", "from app.net.autodiff import walk\nfrom app.errors import DeepVisError\n")
    write(tmp_path, "app/net/autodiff/walk.py", "import numpy\n\n\ndef backward():\n"
                                                "    from app.net.net import Net  # lazy, still up\n")
    write(tmp_path, "app/ui/app.py", "from app.net import net\nfrom .. import errors\n")
    write(tmp_path, "tools/layers.py", "from app.ui import app\n")
    write(tmp_path, "app/stray.py")
    assert upward_imports(tmp_path) == [
        "app/stray.py: module app.stray is in no layer of LAYERS",
        "app/net/autodiff/walk.py:5: app.net.autodiff.walk (autodiff) imports app.net.net (net facade)"]
    assert import_cycles(tmp_path) == [["app.net.autodiff.walk", "app.net.net", "app.net.autodiff.walk"]]


def test_every_module_has_the_layer_the_architecture_gives_it():
    assert [LAYERS[layer_of(name)][0] for name in (
        "app.settings", "app.net.onnx_graph", "app.net.caffe.convert", "app.inputs.files", "app.net.autodiff.conv",
        "app.net", "app.net.net", "app.offline.crops", "app.unit_images", "app.ui.panes.aux", "tools.cli",
        "run_toolbox")] == [
        "base", "importer/runtime", "importer/runtime", "importer/runtime", "autodiff", "net facade", "net facade",
        "offline/views", "offline/views", "ui", "entry points", "entry points"]
