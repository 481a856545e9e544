"""Property tests (Hypothesis): random and mutated prototxt text, caffemodel bytes, image lists and
settings files give a result or a DeepVisError, never another exception, each within a deadline."""
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings, strategies as st

from app.errors import DeepVisError
from app.inputs.lists import ImageListSource, is_siamese_list
from app.net.caffe import schema
from app.net.caffe.convert import convert
from app.net.caffe.reader import net_layers, read_caffemodel, read_prototxt
from app.settings import load_settings

QUICK = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

PROTOTXT = '''name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 1 group: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
'''
SETTINGS = '''# my settings
model = "squeezenet-v1.1"
input_fit_mode = "stretch"
global_scale = 1.5
def layer_pretty_name(name):
    return name.upper()
'''
LIST = '# images\na.png 3\n"b c.png" a label\n\nsub/d.png\n'


def _caffemodel() -> bytes:
    net = schema.NetParameter()
    for name, shapes in (("conv", [(4, 3, 3, 3), (4,)]), ("fc", [(3, 64), (3,)])):
        layer = net.layer.add(name=name, type="Convolution")
        for shape in shapes:
            blob = layer.blobs.add()
            blob.shape.dim.extend(shape)
            blob.data = np.full(shape, 0.25, "<f4").tobytes()
    return net.SerializeToString()


def mutations(seed: bytes, alphabet=st.binary(min_size=1, max_size=4)):
    """The seed with a few byte edits: replace, insert or delete a short run at random places."""
    edit = st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.integers(0, len(seed)), alphabet)

    def apply(edits) -> bytes:
        data = bytearray(seed)
        for kind, where, chunk in edits:
            where = min(where, len(data))
            if kind == "replace":
                data[where:where + len(chunk)] = chunk
            elif kind == "insert":
                data[where:where] = chunk
            else:
                del data[where:where + len(chunk)]
        return bytes(data)

    return st.lists(edit, min_size=1, max_size=6).map(apply)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# text edits keep digits out: a mutation may not turn num_output 4 into 4000000 and time out on zeros
PROTOTXT_EDITS = st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), min_size=1, max_size=4)


def _write(folder: str, name: str, data) -> Path:
    path = Path(folder) / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape"))
    return path


def _result_or_deepvis_error(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except DeepVisError as error:
        assert "\n" not in str(error)
        return error


@QUICK
@given(st.one_of(mutations(PROTOTXT.encode(), PROTOTXT_EDITS.map(str.encode)), st.binary(max_size=300).map(bytes)))
def test_prototxt_parser_and_converter(data):
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "net.prototxt", data)
        parsed = _result_or_deepvis_error(read_prototxt, path)
        if not isinstance(parsed, DeepVisError):
            net_layers(parsed, {})
            _result_or_deepvis_error(convert, path, None)


@QUICK
@given(st.one_of(mutations(_caffemodel()), st.binary(max_size=500)))
def test_caffemodel_reader(data):
    with tempfile.TemporaryDirectory() as folder:
        weights = _result_or_deepvis_error(read_caffemodel, _write(folder, "net.caffemodel", data))
        if not isinstance(weights, DeepVisError):
            assert all(isinstance(array, np.ndarray) for blobs in weights.values() for array, _ in blobs)


@QUICK
@given(st.one_of(mutations(LIST.encode()), st.text(max_size=200).map(str.encode), st.binary(max_size=200)))
@example(b"~\x01")   # "~user" of no known user: pathlib raised RuntimeError (found by this test)
def test_image_list_reader(data):
    with tempfile.TemporaryDirectory() as folder:
        _write(folder, "a.png", b"not really a png")
        path = _write(folder, "images.txt", data)
        _result_or_deepvis_error(is_siamese_list, path)
        source = _result_or_deepvis_error(ImageListSource, path)
        if not isinstance(source, DeepVisError):
            source.next()
            frame = source.read()   # never raises once open: unreadable entries become a message
            assert frame is not None and (frame.images or "no readable image" in frame.message)


@QUICK
@given(st.one_of(mutations(SETTINGS.encode(), PROTOTXT_EDITS.map(str.encode)), st.text(max_size=120).map(str.encode)))
def test_settings_loader(data):
    with tempfile.TemporaryDirectory() as folder:
        loaded = _result_or_deepvis_error(load_settings, _write(folder, "mine.py", data))
        if not isinstance(loaded, DeepVisError):
            assert hasattr(loaded, "model")
