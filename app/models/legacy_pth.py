"""Reading a PyTorch state dict saved in the legacy (non-zip) format, without torch and without
running any code from the file.

The legacy format is five records in a row: a magic number pickle, a protocol version pickle, a
system-info pickle, the state dict pickle (its tensors point at storages by persistent id), the list
of storage keys, then each storage's raw bytes (an int64 element count, then the elements) in key
order. The unpickler resolves only the globals a state dict needs, each to a function here that
returns numpy arrays; any other global is refused before anything is called.
"""
import collections
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import DeepVisError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` and friends: only the element type matters."""

    dtype: type


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: type
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor whose storage bytes come after the pickle; resolved once they are read."""

    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple

    def resolve(self, buffers: dict) -> np.ndarray:
        flat = buffers[self.storage.key]
        if self.offset < 0 or len(self.stride) != len(self.size) or min(self.stride, default=0) < 0:
            raise ValueError(f"tensor view (offset {self.offset}, size {self.size}, stride {self.stride}) is invalid")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if min(self.size, default=1) > 0 and last >= flat.size:
            raise ValueError(f"tensor view {self.size} runs past its storage of {flat.size} elements")
        strides = tuple(s * flat.itemsize for s in self.stride)
        return np.lib.stride_tricks.as_strided(flat[self.offset:], self.size, strides).copy()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, _StorageRef):
        raise ValueError(f"a tensor's storage is a {type(storage).__name__}")
    return _TensorRef(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, stream, path: Path, allow_globals: bool):
        super().__init__(stream)
        self.path = path
        self.allow_globals = allow_globals

    def find_class(self, module, name):
        found = ALLOWED_GLOBALS.get((module, name)) if self.allow_globals else None
        if found is None:
            raise DeepVisError(f"{self.path}: refusing pickle record {module}.{name}: not a tensor rebuild")
        return found

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise DeepVisError(f"{self.path}: refusing persistent record {str(pid)[:60]}: not a storage")
        return _StorageRef(pid[2], pid[1].dtype, int(pid[4]))


def _unpickle(stream, path: Path, allow_globals: bool = False):
    try:
        return _StateDictUnpickler(stream, path, allow_globals).load()
    except DeepVisError:
        raise
    except Exception as error:  # a damaged pickle fails in many ways; all mean the same to a user
        raise DeepVisError(f"{path}: not a readable PyTorch file ({error.__class__.__name__}: {error})"
                           .splitlines()[0]) from None


def _read_storages(stream, path: Path, keys: list, refs: dict) -> dict:
    buffers = {}
    for key in keys:
        if key not in refs:
            raise DeepVisError(f"{path}: storage {key!r} is listed but no tensor uses it")
        dtype = np.dtype(refs[key].dtype)
        header = stream.read(8)
        count = struct.unpack("<q", header)[0] if len(header) == 8 else -1
        left = path.stat().st_size - stream.tell()
        # a count past the file's end is refused before reading: read(n) would allocate all n bytes
        data = stream.read(count * dtype.itemsize) if 0 <= count * dtype.itemsize <= left else b""
        if count < 0 or len(data) != count * dtype.itemsize:
            raise DeepVisError(f"{path}: storage {key!r}: file ends before its data")
        if count != refs[key].numel:
            raise DeepVisError(f"{path}: storage {key!r}: {count} elements, the tensors expect {refs[key].numel}")
        buffers[key] = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
    return buffers


def _storage_refs(state: dict) -> dict:
    return {t.storage.key: t.storage for t in state.values() if isinstance(t, _TensorRef)}


def load_state_dict(path) -> "collections.OrderedDict[str, np.ndarray]":
    """Read a legacy-format PyTorch state dict as an ordered mapping name -> numpy array.

    Raises DeepVisError naming the file and the problem when the file is not such a state dict,
    including any pickle record that would do more than rebuild a tensor.
    """
    path = Path(path)
    if not path.is_file():
        raise DeepVisError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        raise DeepVisError(f"{path}: zip-format PyTorch file; only the legacy format is read "
                           "(save with torch.save(..., _use_new_zipfile_serialization=False))")
    with open(path, "rb") as stream:
        if _unpickle(stream, path) != MAGIC_NUMBER:
            raise DeepVisError(f"{path}: not a PyTorch legacy-format file (wrong magic number)")
        if _unpickle(stream, path) != PROTOCOL_VERSION:
            raise DeepVisError(f"{path}: unsupported PyTorch serialization protocol")
        system = _unpickle(stream, path)
        if not (isinstance(system, dict) and system.get("little_endian", True)):
            raise DeepVisError(f"{path}: big-endian PyTorch files are not supported")
        state = _unpickle(stream, path, allow_globals=True)
        if not isinstance(state, dict):
            raise DeepVisError(f"{path}: holds a {type(state).__name__}, not a state dict")
        keys = _unpickle(stream, path)
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise DeepVisError(f"{path}: storage key list is damaged")
        buffers = _read_storages(stream, path, keys, _storage_refs(state))
    return _resolve(state, buffers, path)


def _resolve(state: dict, buffers: dict, path: Path) -> "collections.OrderedDict[str, np.ndarray]":
    arrays = collections.OrderedDict()
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise DeepVisError(f"{path}: {name}: not a tensor ({type(value).__name__})")
        if value.storage.key not in buffers:
            raise DeepVisError(f"{path}: {name}: its storage {value.storage.key!r} is missing")
        try:
            arrays[name] = value.resolve(buffers)
        except ValueError as error:
            raise DeepVisError(f"{path}: {name}: {error}") from None
    return arrays

