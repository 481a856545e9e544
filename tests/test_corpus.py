"""Every hostile input of the corpus (tests/corpus/make_corpus.py) fed to the real command-line
tool as a subprocess: one stderr line naming the input and what is wrong, the documented exit status,
no traceback, nothing written, bounded memory and time; the odd inputs the tools convert are read."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.corpus import make_corpus

ROOT = Path(__file__).resolve().parents[1]
# one case of each category also runs as a plain ``python -m`` subprocess: the forked runs equal them
PLAIN = {"caffe prototxt": "unknown layer type", "caffe caffemodel": "a blob claiming a terabyte",
         "onnx": "external data at an absolute path", "pth": "os.system inside the state dict",
         "model.yaml": "size is text", "images": "PNG header claiming 40000 x 40000",
         "settings": "typo in a name", "lists": "a missing file among good ones"}


def _files(folder: Path) -> set:
    return {path.relative_to(folder) for path in folder.rglob("*") if "cache" not in path.relative_to(folder).parts}


@pytest.fixture(scope="session")
def corpus_runs(tmp_path_factory):
    """Each case's outcome (case id -> case, folder, {code, stdout, stderr, written}), the tools
    run by tests/corpus/run_cases.py (a process per case), the PLAIN ones also by ``python``."""
    root = tmp_path_factory.mktemp("corpus")
    made = make_corpus.write_corpus(root)
    before = [_files(folder) for _, folder, _ in made]
    listing = root / "cases.json"
    listing.write_text(json.dumps([dict(folder=str(folder), command=command) for _, folder, command in made]))
    subprocess.run([sys.executable, str(ROOT / "tests" / "corpus" / "run_cases.py"), str(listing),
                    str(root / "outcomes.json")], cwd=ROOT, check=True, timeout=600)
    outcomes = json.loads((root / "outcomes.json").read_text())
    runs = {}
    for (item, folder, command), outcome, files in zip(made, outcomes, before):
        outcome["written"] = _files(folder) - files
        if PLAIN.get(item.category) == item.name:
            plain = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True,
                                   timeout=120, env=dict(os.environ, DEEPVIS_CACHE=str(folder / "cache")))
            outcome["plain"] = dict(code=plain.returncode, stderr=plain.stderr)
        runs[f"{item.name} / {item.category}"] = (item, folder, outcome)
    return runs


CASE_IDS = [f"{c.name} / {c.category}" for c in make_corpus.CASES]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_each_input_gives_its_line_and_exit_status(corpus_runs, case_id):
    item, folder, outcome = corpus_runs[case_id]
    stderr = outcome["stderr"]
    assert "Traceback" not in stderr, stderr
    assert outcome["code"] == item.exit, stderr
    lines = stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), stderr   # no decoder or runtime log noise
    if not item.bad:
        assert not lines and outcome["stdout"], stderr
        return
    assert any(re.search(item.pattern, line) for line in lines), stderr
    # one line per failure; classify adds its count of failed images
    assert len(lines) <= 2 and all(len(line) < 400 for line in lines)
    assert not outcome["written"], f"wrote {outcome['written']}"
    assert not (folder / "MARKER").exists(), "a pickle ran code"


@pytest.mark.parametrize("category", sorted(PLAIN))
def test_a_plain_python_run_gives_what_the_forked_run_gives(corpus_runs, category):
    _, _, outcome = corpus_runs[f"{PLAIN[category]} / {category}"]
    assert outcome["plain"]["code"] == outcome["code"]
    assert outcome["plain"]["stderr"] == outcome["stderr"]


def test_the_corpus_covers_every_category_with_over_100_bad_inputs():
    bad = [c for c in make_corpus.CASES if c.bad]
    assert len(bad) >= 100
    assert {c.category for c in bad} == set(make_corpus.CATEGORIES)
    assert len(set(CASE_IDS)) == len(CASE_IDS)


def test_the_docs_give_the_corpus_counts():
    text = (ROOT / "docs" / "reliability.md").read_text()
    for category in make_corpus.CATEGORIES:
        count = sum(c.bad for c in make_corpus.CASES if c.category == category)
        assert re.search(rf"\| {re.escape(category)} \| {count} \|", text), category


@pytest.mark.parametrize("tool", ["classify", "convert_caffe"])
def test_help_documents_the_exit_status(tool, capsys):
    module = __import__(f"tools.{tool}", fromlist=["main"])
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0 and "exit status: 0 when" in text and "2 when" in text
    assert tool == "convert_caffe" or "1 when some input failed" in text
