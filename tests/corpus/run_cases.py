"""Run corpus cases as the tools' own processes, quickly: python tests/corpus/run_cases.py CASES.json OUT.json

Each case's command (``-m tools.X ARGS``, ``SCRIPT.py ARGS`` or ``-c CODE ARGS``: what ``python`` is given) runs
in a process of its own, forked from this one once it has imported the toolbox: the tool's
``__main__`` runs exactly as under ``python -m``, with its own stdout, stderr, exit status, an
address-space limit and a time limit, without paying the interpreter and imports each time.
"""
import json
import os
import resource
import runpy
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import app.models.legacy_pth  # noqa: E402,F401  (imported once, before the forks)
import tools.classify  # noqa: E402,F401
import tools.convert_caffe  # noqa: E402,F401

MEMORY_LIMIT = 3 * 1024 ** 3   # honouring a terabyte claim would break it
SECONDS = 60
PARALLEL = 2


def _child(command: list, out: int, err: int) -> None:
    os.dup2(out, 1)
    os.dup2(err, 2)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.alarm(SECONDS)
    code = 0
    try:
        if command[0] == "-m":
            sys.argv = [command[1], *command[2:]]
            sys.modules.pop(command[1], None)   # runpy warns about a module run that is already imported
            runpy.run_module(command[1], run_name="__main__", alter_sys=True)
        elif command[0].endswith(".py"):
            sys.argv = list(command)
            runpy.run_path(command[0], run_name="__main__")
        else:
            sys.argv = ["-c", *command[2:]]
            exec(compile(command[1], "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if not isinstance(done.code, (int, type(None))):
            print(done.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _start(case: dict) -> tuple:
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:
        os.environ["DEEPVIS_CACHE"] = str(Path(case["folder"]) / "cache")
        _child(case["command"], out.fileno(), err.fileno())
    return pid, out, err


def _collect(status: int, out, err) -> dict:
    texts = []
    for stream in (out, err):
        stream.seek(0)
        texts.append(stream.read().decode("utf-8", "replace"))
        stream.close()
    return dict(code=os.waitstatus_to_exitcode(status), stdout=texts[0], stderr=texts[1])


def run(cases: list) -> list:
    """Each case's {code, stdout, stderr}, in order, PARALLEL at a time."""
    os.environ["OMP_NUM_THREADS"] = "1"
    results, running, pending = [None] * len(cases), {}, list(enumerate(cases))
    while pending or running:
        while pending and len(running) < PARALLEL:
            index, case = pending.pop(0)
            pid, out, err = _start(case)
            running[pid] = (index, out, err)
        pid, status = os.wait()
        index, out, err = running.pop(pid)
        results[index] = _collect(status, out, err)
    return results


if __name__ == "__main__":
    cases = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(run(cases)))
