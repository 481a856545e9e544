"""Downloads into the user cache: resumable (HTTP Range), checked against a published digest.

A model_zoo entry's `files:` list names what to fetch: `{name, url, sha256}` or `{name, url, sha1}`
(the BVLC model zoo publishes SHA-1). Files land in <cache>/models/<entry>/, where model.yaml paths
are looked up. A half-finished download is kept as NAME.part and continued on the next try.
"""
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from app.errors import DeepVisError
from app.paths import cache_dir

_CHUNK = 1 << 20
_DIGESTS = ("sha256", "sha1")


def model_files_dir(entry: str) -> Path:
    """Where a model_zoo entry's downloaded files live."""
    return cache_dir() / "models" / entry


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected_digest(entry: dict) -> tuple:
    for algorithm in _DIGESTS:
        if entry.get(algorithm):
            return algorithm, str(entry[algorithm]).lower()
    raise DeepVisError(f"{entry.get('name', entry.get('url'))}: no sha256 or sha1 given to check the download")


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
            except OSError as error:
                raise DeepVisError(f"{url}: download broke off ({error}); run again to resume") from None


def fetch(url: str, target: Path, **digest) -> Path:
    """Download `url` to `target` unless a copy with the right digest is there; returns `target`.

    digest: sha256="..." or sha1="...". A wrong digest removes the download and raises.
    """
    target = Path(target)
    algorithm, expected = _expected_digest(dict(digest, url=url))
    if target.is_file() and file_digest(target, algorithm) == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    _download(url, partial)
    found = file_digest(partial, algorithm)
    if found != expected:
        partial.unlink()
        raise DeepVisError(f"{url}: {algorithm} of the download is {found}, expected {expected} (removed)")
    os.replace(partial, target)
    return target


def fetch_model_files(entry: str, files: list) -> list:
    """Fetch every `{name, url, sha256|sha1}` of a model_zoo entry into its cache folder."""
    folder = model_files_dir(entry)
    paths = []
    for item in files:
        digest = {key: item[key] for key in _DIGESTS if item.get(key)}
        paths.append(fetch(item["url"], folder / item["name"], **digest))
    return paths
