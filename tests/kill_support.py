"""Killing a tool at chosen moments: ``python -m tests.kill_support TOOL ARGS...`` runs tools.TOOL with
every whole-file write (app.files.write_atomic) announced on the pipe DEEPVIS_WRITES_FD names, as
"start N PATH" once the temporary file holds the data and "wrote N PATH" once it is renamed into
place. With DEEPVIS_HOLD_AT=N, write N waits there with its temporary file written, so a test's
SIGKILL lands inside that write. ``kill_at`` and ``kill_after`` drive it; ``files_of`` compares output folders."""
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLD_SECONDS = 60   # longer than any test waits: the hold ends by the kill


def files_of(folder: Path) -> dict:
    """Relative path -> bytes of every file under ``folder`` but the hidden ones (the temporary file
    of a write that a SIGKILL cut short, app/files.py)."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.name.startswith(".")}


def assert_same_files(first: Path, second: Path) -> None:
    ours, theirs = files_of(first), files_of(second)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        assert ours[name] == theirs[name], name


def run_tool(tool: str, arguments: list, timeout: float = 120) -> subprocess.CompletedProcess:
    """The tool run whole, in its own process (no announcements)."""
    command = [sys.executable, "-m", f"tools.{tool}"] + [str(argument) for argument in arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def kill_at(tool: str, arguments: list, write: int, inside: bool, timeout: float = 120) -> str:
    """Runs the tool and SIGKILLs it inside its ``write``-th whole-file write (``inside``: the
    temporary file written, not yet renamed) or just after it. Returns the path being written, or
    "" when the run ended before that write (it then must have succeeded)."""
    wanted = f"{'start' if inside else 'wrote'} {write} "
    return _kill_when(tool, arguments, lambda line: line.startswith(wanted), write if inside else 0, timeout)


def kill_after(tool: str, arguments: list, ending: str, timeout: float = 120) -> str:
    """Runs the tool and SIGKILLs it just after its first whole-file write of a path ending with
    ``ending`` (a unit's info.json, a layer's stats.npz...). Returns that path, or "" as kill_at."""
    return _kill_when(tool, arguments, lambda line: line.startswith("wrote ") and line.rstrip("\n").endswith(ending),
                      0, timeout)


def _kill_when(tool: str, arguments: list, matches, hold_at: int, timeout: float) -> str:
    """Runs the tool announcing its writes and SIGKILLs it at the first announcement that
    ``matches``; hold_at: the write that waits with its temporary file written (0: none)."""
    reader, writer = os.pipe()
    environment = dict(os.environ, DEEPVIS_WRITES_FD=str(writer))
    if hold_at:
        environment["DEEPVIS_HOLD_AT"] = str(hold_at)
    command = [sys.executable, "-m", "tests.kill_support", tool] + [str(argument) for argument in arguments]
    errors = tempfile.TemporaryFile()   # not a pipe: a full one would stop the tool
    process = subprocess.Popen(command, cwd=ROOT, env=environment, pass_fds=(writer,),
                               stdout=subprocess.DEVNULL, stderr=errors)
    os.close(writer)
    deadline = time.monotonic() + timeout
    with os.fdopen(reader, "r") as announcements:
        for line in announcements:
            assert time.monotonic() < deadline, f"{tool} ran past {timeout} s"
            if matches(line):
                os.kill(process.pid, signal.SIGKILL)
                assert process.wait(timeout=30) == -signal.SIGKILL
                return line.rstrip("\n").split(" ", 2)[2]
    code = process.wait(timeout=30)
    errors.seek(0)
    assert code == 0, errors.read().decode()[-2000:]
    return ""


def _announced_writes() -> None:
    """Wraps app.files.write_atomic, which every whole-file writer calls, with the announcements."""
    from app import files

    announce = os.fdopen(int(os.environ["DEEPVIS_WRITES_FD"]), "w", buffering=1)
    hold_at = int(os.environ.get("DEEPVIS_HOLD_AT", "0"))
    write_atomic, count = files.write_atomic, 0

    def announced(path, write):
        nonlocal count
        count += 1
        number = count

        def write_then_hold(stream):
            write(stream)
            stream.flush()
            announce.write(f"start {number} {path}\n")
            if number == hold_at:
                time.sleep(HOLD_SECONDS)
        written = write_atomic(path, write_then_hold)
        announce.write(f"wrote {number} {path}\n")
        return written

    files.write_atomic = announced


if __name__ == "__main__":
    _announced_writes()
    tool = sys.argv[1]
    sys.argv = [f"tools.{tool}"] + sys.argv[2:]
    runpy.run_module(f"tools.{tool}", run_name="__main__")
