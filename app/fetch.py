"""Downloads into the user cache: resumable (HTTP Range), checked against a published digest.

A model_zoo entry's fetch.py lists its files, each a dict with `name` and one of:
- `url` and a digest: `sha256`, `sha1` (what the BVLC model zoo publishes) or `git_blob` (the object
  id GitHub shows for a file at a commit: SHA-1 of "blob <size>\\0" + the bytes);
- `url` and `unverified`: why no digest can be checked (none is published); the file is fetched
  unchecked and a line says so;
- `page` and `unverified`: no direct download exists (e.g. a OneDrive folder); the user saves the
  file by hand into the entry's folder, and fetch says where.

Files land in <cache>/models/<entry>/, where model.yaml names are looked up. A half-finished download
is kept as NAME.part and continued on the next try. DEEPVIS_MODEL_MIRROR=URL fetches every file from
URL/<entry>/<name> instead (an offline copy, a local server), still checked against its digest.
`fetch.py --no-weights` leaves out a Caffe entry's weights (its model.yaml's source: caffe: weights):
the prototxt is enough for seeded random weights (--random-weights SEED).
"""
import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from app.errors import DeepVisError, exit_with_message
from app.paths import feed_file, model_files_dir

_CHUNK = 1 << 20   # bytes read from a download at a time
_DIGESTS = ("sha256", "sha1", "git_blob")
MIRROR_VARIABLE = "DEEPVIS_MODEL_MIRROR"


def file_digest(path: Path, algorithm: str) -> str:
    path = Path(path)
    digest = hashlib.new("sha1" if algorithm == "git_blob" else algorithm)
    if algorithm == "git_blob":
        digest.update(f"blob {path.stat().st_size}\0".encode())
    return feed_file(digest, path).hexdigest()


def _expected_digest(url: str, digest: dict, unverified: str) -> tuple:
    """(algorithm, hex digest) to check the download of `url` against; (None, None) if unverified."""
    for algorithm in _DIGESTS:
        if digest.get(algorithm):
            return algorithm, str(digest[algorithm]).lower()
    if unverified:
        return None, None
    raise DeepVisError(f"{url}: no sha256, sha1 or git_blob given to check the download "
                       "(say why with unverified=...)")


def _open(url: str, offset: int):
    """The response, asking for the bytes from `offset` on; network trouble is one line."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        return urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left past what we hold
            return None
        raise DeepVisError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DeepVisError(f"{url}: cannot download ({reason}); offline? put the file there by hand") from None


def _download(url: str, partial: Path) -> None:
    """Append the rest of `url` to `partial`, or start over where the server ignores the range."""
    offset = partial.stat().st_size if partial.exists() else 0
    response = _open(url, offset)
    if response is None:
        return
    with response:
        resumed = offset and getattr(response, "status", None) == 206
        with open(partial, "ab" if resumed else "wb") as stream:
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    stream.write(chunk)
                stream.flush()
                os.fsync(stream.fileno())   # on disk before fetch renames it into place
            except OSError as error:
                raise DeepVisError(f"{url}: download broke off ({error}); run again to resume") from None


def fetch(url: str, target: Path, unverified: str = "", **digest) -> Path:
    """Download `url` to `target` unless a copy with the right digest is there; returns `target`.

    digest: sha256=, sha1= or git_blob=. A wrong digest removes the download and raises. Without a
    digest, `unverified` must say why; a file already at `target` is then taken as it is.
    """
    target = Path(target)
    algorithm, expected = _expected_digest(url, digest, unverified)
    if target.is_file() and (algorithm is None or file_digest(target, algorithm) == expected):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    _download(url, partial)
    if algorithm is not None:
        found = file_digest(partial, algorithm)
        if found != expected:
            partial.unlink()
            raise DeepVisError(f"{url}: {algorithm} of the download is {found}, expected {expected} (removed)")
    # NOTE: not app.files.write_atomic, which starts afresh: NAME.part outlives a broken download
    os.replace(partial, target)
    return target


def fetch_model_files(entry: str, files: list, say=print) -> list:
    """Fetch every file of a model_zoo entry (see the module docstring) into its cache folder.

    `say` gets one line per file that is not checked or must be saved by hand; files without a
    direct download that are not there yet raise one error naming them, after the others are in.
    """
    folder, mirror = model_files_dir(entry), os.environ.get(MIRROR_VARIABLE, "").rstrip("/")
    folder.mkdir(parents=True, exist_ok=True)  # ready for files saved by hand
    paths, missing = [], []
    for item in files:
        target = folder / item["name"]
        digest = {key: item[key] for key in _DIGESTS if item.get(key)}
        url = f"{mirror}/{entry}/{item['name']}" if mirror else item.get("url")
        if url is None:
            if not target.is_file():
                say(f"{item['name']}: no direct download ({item['unverified']}); save it from {item['page']} "
                    f"into {folder}")
                missing.append(item["name"])
                continue
        else:
            fetch(url, target, unverified=item.get("unverified", ""), **digest)
        if not digest:
            say(f"{item['name']}: not checked ({item['unverified']})")
        paths.append(target)
    if missing:
        raise DeepVisError(f"{entry}: {', '.join(missing)} not in {folder} yet (download by hand, see above)")
    return paths


def fetch_entry(entry: str, files: list, argv=None) -> None:
    """What each model_zoo/<entry>/fetch.py runs: fetch, print where the files are, one line on errors.
    argv (default sys.argv[1:]): nothing, or --no-weights."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv not in ([], ["--no-weights"]):
            raise DeepVisError(f"{entry}/fetch.py: unknown arguments {' '.join(argv)!r} (none, or --no-weights)")
        if argv:
            weights = caffe_weights_name(entry)
            files = [item for item in files if item["name"] != weights]
        paths = fetch_model_files(entry, files)
    except DeepVisError as error:
        exit_with_message(error)
    print(f"{entry}: {len(paths)} files in {model_files_dir(entry)}; load it with Net.load({entry!r}) "
          f"or python run_toolbox.py --model {entry}" + (" --random-weights SEED" if argv else ""))


def caffe_weights_name(entry: str) -> str:
    """The weights file a Caffe model_zoo entry's model.yaml names."""
    path = Path(__file__).resolve().parents[1] / "model_zoo" / entry / "model.yaml"
    try:
        return str(yaml.safe_load(path.read_text())["source"]["caffe"]["weights"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise DeepVisError(f"{path}: no Caffe weights named there ({error.__class__.__name__}); "
                           "--no-weights is for Caffe entries") from None
