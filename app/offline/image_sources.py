"""Dataset images beyond local files: any URI pyarrow's file systems read (``s3://bucket/folder``,
``gs://...``, ``hdfs://...``, ``file:///...``), so that workers of a cluster read a bucket directly.

Credentials are pyarrow's own (for S3: the AWS environment variables, ~/.aws/credentials or the
instance's role; for GCS: Application Default Credentials); nothing of ours. pyarrow comes with the
``ray`` extra and is imported only for a URI. A URI's bytes are decoded by the same reader as a local
file (app.net.preprocess.read_image), so the preprocessing, its limits and its errors are the same.
"""
from app.errors import DeepVisError
from app.inputs.files import natural_key
from app.net.image_file import check_file_size, decode_image_noted
from app.net.preprocess import read_image


def is_uri(path) -> bool:
    """Whether ``path`` names a file system by its scheme (``s3://``, ``file://``), not a local path."""
    return "://" in str(path)


def _file_system(uri: str) -> tuple:
    """(pyarrow file system, path inside it) of a URI."""
    try:
        from pyarrow import fs
    except ImportError:
        raise DeepVisError(f"{uri}: reading a URI needs pyarrow (pip install -e \".[ray]\")") from None
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError or its own errors per file system
        raise DeepVisError(f"{uri}: cannot open its file system ({error})") from None


def list_folder(uri: str) -> list:
    """The files of a folder URI (not its subfolders), in natural name order, as URIs."""
    system, folder = _file_system(uri)
    from pyarrow import fs

    try:
        found = system.get_file_info(fs.FileSelector(folder, recursive=False))
    except (OSError, FileNotFoundError) as error:
        raise DeepVisError(f"{uri}: no such folder ({error})") from None
    names = sorted((info.base_name for info in found
                    if info.type == fs.FileType.File and not info.base_name.startswith(".")), key=natural_key)
    return [uri.rstrip("/") + "/" + name for name in names]


def read(path):
    """An image as H x W x 3 uint8 BGR, from a local path or a URI; a DeepVisError naming it when
    it is missing or cannot be decoded."""
    if not is_uri(path):
        return read_image(path)
    system, inside = _file_system(str(path))
    try:
        with system.open_input_file(inside) as stream:
            check_file_size(stream.size(), str(path))   # before the bytes are read
            data = stream.read()
    except (OSError, FileNotFoundError) as error:
        raise DeepVisError(f"{path}: cannot read ({error})") from None
    return decode_image_noted(data, str(path))[0]   # the one decoder, its checks and limits
