"""The corpus of hostile inputs, made from code: python tests/corpus/make_corpus.py OUT_FOLDER

Every case is one input a user (or an attacker) could hand the toolbox, the tool command that
reads it, the exit status it must end with and the pattern its one stderr line must match.
"bad" cases must fail with that line; "odd" cases (gray, 16-bit, CMYK, rotated, animated images,
CRLF lists...) must be read, converted as docs/reliability.md says. Files are written into one
folder per case; nothing here is stored in the repository as a binary blob.

Writing OUT_FOLDER/cases.json as well lets a shell loop run them; tests/test_corpus.py runs them.
"""
import io
import json
import math
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.net.caffe import schema  # noqa: E402

CATEGORIES = ("caffe prototxt", "caffe caffemodel", "onnx", "pth", "model.yaml", "images", "settings", "lists")
PTH_READER = ("import sys; from tools import cli; from app.models.legacy_pth import load_state_dict\n"
              "with cli.one_line_errors(): load_state_dict(sys.argv[1])")


@dataclass(frozen=True)
class Case:
    """make(folder) writes the case's files and returns the command's arguments after ``python``."""

    name: str
    category: str
    make: Callable[[Path], list]
    pattern: str         # regex searched in the stderr line naming the input ("" for an odd case)
    exit: int            # 2: the tool cannot run; 1: an input failed, the rest was done; 0: all done

    @property
    def bad(self) -> bool:
        return self.exit != 0


CASES = []


def case(name: str, category: str, pattern: str, exit: int = 2):
    def register(make):
        CASES.append(Case(name, category, make, pattern, exit))
        return make
    return register


# -- a tiny classifier every image, settings and list case runs -------------------------------
def tiny_onnx(input_shape=(1, 3, 8, 8), dims=None, **graph_changes) -> onnx.ModelProto:
    """Conv 3->4 (3x3), global average pool, flatten, softmax: four classes."""
    weight = numpy_helper.from_array(np.full((4, input_shape[1], 3, 3), 0.1, np.float32), "W")
    nodes = [helper.make_node("Conv", ["data", "W"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("GlobalAveragePool", ["conv"], ["pool"], name="pool"),
             helper.make_node("Flatten", ["pool"], ["flat"], name="flat"),
             helper.make_node("Softmax", ["flat"], ["prob"], name="prob")]
    graph = helper.make_graph(graph_changes.get("nodes", nodes), "tiny",
                              [helper.make_tensor_value_info("data", TensorProto.FLOAT, dims or list(input_shape))],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, None)],
                              initializer=graph_changes.get("initializer", [weight]))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def write_tiny(folder: Path) -> Path:
    path = folder / "tiny.onnx"
    onnx.save(tiny_onnx(), str(path))
    return path


def classify(folder: Path, *arguments) -> list:
    return ["-m", "tools.classify", "--model", str(write_tiny(folder)), *map(str, arguments)]


def picture(height=24, width=32) -> np.ndarray:
    """A colour test picture (BGR): a gradient and a bright square in the top left corner."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)
    image[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    image[: height // 3, : width // 3] = 255
    return image


def png_bytes(image=None) -> bytes:
    return cv2.imencode(".png", picture() if image is None else image)[1].tobytes()


def jpeg_bytes() -> bytes:
    return cv2.imencode(".jpg", picture())[1].tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, body: bytes = b"\0" * 64) -> bytes:
    """A PNG whose header claims width x height 8-bit RGB pixels, with a tiny image stream."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(body))
            + png_chunk(b"IEND", b""))


def image_case(name: str, pattern: str):
    """A bad image: classify reads it among good ones; its line names it, the exit status is 1."""
    def register(write):
        def make(folder):
            good = folder / "good.png"
            good.write_bytes(png_bytes())
            return classify(folder, good, write(folder))
        CASES.append(Case(name, "images", make, pattern, 1))
        return write
    return register


def odd_image(name: str):
    """An image the reader converts (docs/reliability.md): classify must succeed."""
    def register(write):
        CASES.append(Case(name, "images", lambda folder: classify(folder, write(folder)), "", 0))
        return write
    return register


def file_with(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# -- images -----------------------------------------------------------------------------------
for _name, _file, _data, _pattern in [
    ("empty file", "empty.png", b"", r"empty\.png: empty file \(0 bytes\)"),
    ("one byte", "one.jpg", b"\xff", r"one\.jpg: cannot decode"),
    ("text named .jpg", "notes.jpg", b"these are my notes\n" * 20, r"notes\.jpg: cannot decode \(not an image"),
    ("random bytes named .png", "noise.png", bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8)),
     r"noise\.png: cannot decode"),
    ("PNG signature only", "sig.png", b"\x89PNG\r\n\x1a\n", r"sig\.png: cannot decode"),
    ("truncated PNG", "cut.png", png_bytes()[:60], r"cut\.png: cannot decode"),
    ("PNG with a broken header CRC", "crc.png", png_bytes()[:29] + b"\0\0\0\0" + png_bytes()[33:],
     r"crc\.png: cannot decode"),
    ("truncated JPEG header", "cut.jpg", jpeg_bytes()[:150], r"cut\.jpg: cannot decode"),
    ("JPEG cut in its pixel data", "half.jpg", jpeg_bytes()[:len(jpeg_bytes()) // 2], r"half\.jpg: cannot decode"),
    ("PNG header claiming 40000 x 40000", "huge.png", png_claiming(40000, 40000),
     r"huge\.png: its header claims more than \d+ pixels"),
    ("PNG header claiming 12000 x 10000", "large.png", png_claiming(12000, 10000),
     r"large\.png: 12000 x 10000 pixels, more than image_max_pixels"),
    ("PNG header claiming 0 x 0", "zero.png", png_claiming(0, 0), r"zero\.png: cannot decode"),
    ("PNG header claiming 2^31 x 1", "wide.png", png_claiming(2 ** 31 - 1, 1), r"wide\.png: "),
    ("GIF header claiming 65535 x 65535", "huge.gif",
     b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\0\0\0" + b",\0\0\0\0\xff\xff\xff\xff\0\x02\x02D\x01\0;",
     r"huge\.gif: its header claims more than"),
    ("BMP header claiming 50000 x 50000", "huge.bmp",
     b"BM" + struct.pack("<IHHI", 1000, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 50000, 50000, 1, 24, 0, 0, 0, 0, 0, 0)
     + b"\0" * 64, r"huge\.bmp: its header claims more than"),
    ("BMP with a negative width", "negative.bmp",
     b"BM" + struct.pack("<IHHI", 1000, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, -20, 20, 1, 24, 0, 0, 0, 0, 0, 0)
     + b"\0" * 64, r"negative\.bmp: (cannot decode|its header claims)"),
    ("JPEG SOF claiming 65000 x 65000", "huge.jpg",
     jpeg_bytes().replace(b"\xff\xc0\x00\x11\x08\x00\x18\x00\x20", b"\xff\xc0\x00\x11\x08\xfd\xe8\xfd\xe8"),
     r"huge\.jpg: its header claims more than"),
    ("TIFF header claiming 30000 x 30000", "huge.tif",
     b"II*\0\x08\0\0\0" + struct.pack("<H", 3) + struct.pack("<HHII", 256, 4, 1, 30000)
     + struct.pack("<HHII", 257, 4, 1, 30000) + struct.pack("<HHII", 273, 4, 1, 8) + b"\0\0\0\0",
     r"huge\.tif: its header claims more than"),
    ("WebP canvas claiming 16384 x 16384", "huge.webp",
     b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8X" + struct.pack("<I", 10) + b"\0\0\0\0"
     + (16383).to_bytes(3, "little") * 2 + b"\0" * 8,
     r"huge\.webp: "),
    ("HTML saved as .png", "page.png", b"<!DOCTYPE html><html><body>404</body></html>", r"page\.png: cannot decode"),
    ("a PDF named .jpg", "doc.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", r"doc\.jpg: cannot decode"),
    ("a zip named .png", "archive.png", b"PK\x05\x06" + b"\0" * 18, r"archive\.png: cannot decode"),
]:
    image_case(_name, _pattern)(lambda folder, f=_file, d=_data: file_with(folder, f, d))


@image_case("PNG bomb: 20000 x 20000 zeros in 1 MB", r"bomb\.png: its header claims more than")
def _bomb(folder):
    stream = zlib.compressobj(9)
    row = b"\0" + b"\0" * 20000
    body = b"".join(stream.compress(row) for _ in range(20000)) + stream.flush()
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    return file_with(folder, "bomb.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                     + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b""))


@image_case("missing image file", r"gone\.png: no such image file")
def _missing(folder):
    return folder / "gone.png"


@image_case("a folder named like an image", r"folder\.png: not a file")
def _folder(folder):
    (folder / "folder.png").mkdir()
    return folder / "folder.png"


@case("file over image_max_file_bytes", "images", r"big\.png: \d+ bytes, more than image_max_file_bytes = 1000", 1)
def _too_big(folder):
    big = file_with(folder, "big.png", png_bytes(np.random.default_rng(2).integers(0, 256, (90, 90, 3), np.uint8)))
    limit = file_with(folder, "limit.py", b"image_max_file_bytes = 1000\n")
    return classify(folder, big, "--settings", limit)


def _pil_file(folder: Path, name: str, image: Image.Image, **options) -> Path:
    image.save(folder / name, **options)
    return folder / name


_RGB = Image.fromarray(picture()[:, :, ::-1])

odd_image("gray PNG")(lambda folder: _pil_file(folder, "gray.png", _RGB.convert("L")))
odd_image("gray + alpha PNG")(lambda folder: _pil_file(folder, "la.png", _RGB.convert("LA")))
odd_image("RGBA PNG")(lambda folder: _pil_file(folder, "rgba.png", _RGB.convert("RGBA")))
odd_image("16-bit PNG")(lambda folder: file_with(folder, "deep.png", png_bytes(picture().astype(np.uint16) * 257)))
odd_image("CMYK JPEG")(lambda folder: _pil_file(folder, "cmyk.jpg", _RGB.convert("CMYK")))
odd_image("animated GIF")(lambda folder: _pil_file(folder, "anim.gif", _RGB, save_all=True,
                                                  append_images=[_RGB.rotate(90)]))
odd_image("APNG")(lambda folder: _pil_file(folder, "anim.png", _RGB, save_all=True, append_images=[_RGB.rotate(90)]))
odd_image("multi-page TIFF")(lambda folder: _pil_file(folder, "pages.tif", _RGB, save_all=True,
                                                     append_images=[_RGB.rotate(90)]))


@odd_image("TIFF whose page list loops")
def _looping_tiff(folder):
    path = _pil_file(folder, "loop.tif", _RGB)
    data = bytearray(path.read_bytes())
    first = struct.unpack("<I", data[4:8])[0]
    entries = struct.unpack("<H", data[first:first + 2])[0]
    after = first + 2 + 12 * entries
    data[after:after + 4] = struct.pack("<I", first)   # the next page is this one again
    return file_with(folder, "loop.tif", bytes(data))


@odd_image("EXIF-rotated JPEG")
def _rotated(folder):
    exif = _RGB.getexif()
    exif[0x0112] = 6
    return _pil_file(folder, "rotated.jpg", _RGB, exif=exif.tobytes())


# -- Caffe prototxt (convert_caffe) ---------------------------------------------------------------
INPUT = 'name: "t"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'


def conv(params: str, name="conv", bottom="data", top=None) -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top or name}"\n'
            f'  convolution_param {{ {params} }} }}\n')


def convert(folder: Path, prototxt: str, caffemodel: bytes = None) -> list:
    path = folder / "net.prototxt"
    path.write_text(prototxt)
    arguments = ["-m", "tools.convert_caffe", str(path)]
    if caffemodel is not None:
        (folder / "net.caffemodel").write_bytes(caffemodel)
        arguments.append(str(folder / "net.caffemodel"))
    return arguments + ["-o", str(folder / "out.onnx")]


for _name, _text, _pattern in [
    ("unclosed brace", INPUT + 'layer { name: "c" type: "ReLU" bottom: "data" top: "c"\n', r"net\.prototxt: line \d+"),
    ("unknown field", INPUT + 'layerz { name: "c" }\n', r"net\.prototxt: line 3, column \d+: .*layerz"),
    ("string where a number goes", INPUT + conv('num_output: "ten" kernel_size: 3'), r"net\.prototxt: line 4, column \d+"),
    ("number where a message goes", INPUT + conv("num_output: 4 weight_filler: 5"), r"net\.prototxt: line 4, column \d+"),
    ("negative pad (unsigned field)", INPUT + conv("num_output: 4 kernel_size: 3 pad: -1"), r"net\.prototxt: line 4, column \d+"),
    ("float for an integer", INPUT + conv("num_output: 4.5 kernel_size: 3"), r"net\.prototxt: line 4, column \d+"),
    ("unknown enum value", INPUT + 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
     'pooling_param { pool: MEDIAN kernel_size: 2 } }\n', r"net\.prototxt: line 3, column \d+"),
    ("unknown layer type", INPUT + 'layer { name: "f" type: "Frobnicate" bottom: "data" top: "f" }\n',
     r"layer f: type Frobnicate cannot be converted"),
    ("bottom never produced", INPUT + 'layer { name: "r" type: "ReLU" bottom: "nothing" top: "r" }\n',
     r"layer r: bottom blob 'nothing' is not produced"),
    ("cycle between two layers", INPUT + 'layer { name: "a" type: "ReLU" bottom: "b" top: "a" }\n'
     'layer { name: "b" type: "ReLU" bottom: "a" top: "b" }\n', r"layer a: bottom blob 'b' is not produced"),
    ("layer feeding itself", INPUT + 'layer { name: "a" type: "Eltwise" bottom: "data" bottom: "a" top: "a" }\n',
     r"layer a: bottom blob 'a' is not produced"),
    ("no input", 'name: "t"\nlayer { name: "r" type: "ReLU" bottom: "x" top: "r" }\n', r"declares no input"),
    ("empty prototxt", "", r"declares no input"),
    ("input of rank 3", 'input: "data"\ninput_shape { dim: 3 dim: 8 dim: 8 }\n', r"N x C x H x W is needed"),
    ("input of a terabyte", 'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 1000000 dim: 1000000 }\n',
     r"input data has shape \(1, 3, 1000000, 1000000\)"),
    ("input with a zero dim", 'input: "data"\ninput_shape { dim: 1 dim: 0 dim: 8 dim: 8 }\n', r"each dim must be at least 1"),
    ("input with a negative dim", 'input: "data"\ninput_shape { dim: 1 dim: 3 dim: -8 dim: 8 }\n',
     r"each dim must be at least 1"),
    ("num_output 0", INPUT + conv("num_output: 0 kernel_size: 3"), r"layer conv \(Convolution\): num_output 0"),
    ("group 0", INPUT + conv("num_output: 4 kernel_size: 3 group: 0"), r"layer conv \(Convolution\): group 0"),
    ("group not dividing the channels", INPUT + conv("num_output: 4 kernel_size: 3 group: 2"),
     r"group 2 must divide the 3 input channels"),
    ("stride 0", INPUT + conv("num_output: 4 kernel_size: 3 stride: 0"), r"stride \(0, 0\) must be at least 1"),
    ("kernel 0", INPUT + conv("num_output: 4 kernel_size: 0"), r"kernel \(0, 0\) must be at least 1"),
    ("dilation 0", INPUT + conv("num_output: 4 kernel_size: 3 dilation: 0"), r"dilation \(0, 0\) must be at least 1"),
    ("kernel larger than the image", INPUT + conv("num_output: 4 kernel_size: 50"), r"layer conv \(Convolution\): "),
    ("weights of 2 TB", (INPUT + conv("num_output: 1000000 kernel_size: 11 pad: 5")).replace("dim: 3", "dim: 4000"),
     r"layer conv \(Convolution\): weight blob 0 would have shape \(1000000, 4000, 11, 11\)"),
    ("weights of 1.4 GB", INPUT + conv("num_output: 1000000 kernel_size: 11 pad: 5"),
     r"layer conv \(Convolution\): weight blob 0 would have shape \(1000000, 3, 11, 11\)"),
    ("an activation of 400 GB", INPUT.replace("dim: 8 dim: 8", "dim: 10000 dim: 10000") + conv("num_output: 1000 kernel_size: 1"),
     r"layer conv \(Convolution\): its output conv would have shape"),
    ("pooling stride 0", INPUT + 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
     'pooling_param { kernel_size: 2 stride: 0 } }\n', r"layer p \(Pooling\): kernel \(2, 2\), stride \(0, 0\)"),
    ("pooling pad as large as its kernel", INPUT + 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
     'pooling_param { kernel_size: 2 pad: 2 } }\n', r"layer p \(Pooling\): .*pad at least 0 and smaller"),
    ("pooling without a kernel", INPUT + 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" }\n',
     r"layer p \(Pooling\): kernel \(0, 0\)"),
    ("stochastic pooling", INPUT + 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
     'pooling_param { pool: STOCHASTIC kernel_size: 2 } }\n', r"only MAX and AVE pooling"),
    ("inner product num_output 0", INPUT + 'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" '
     'inner_product_param { num_output: 0 } }\n', r"layer fc \(InnerProduct\): num_output 0"),
    ("concat of mismatched maps", INPUT + conv("num_output: 4 kernel_size: 3") +
     'layer { name: "cat" type: "Concat" bottom: "data" bottom: "conv" top: "cat" }\n', r"layer cat \(Concat\): "),
    ("eltwise of mismatched maps", INPUT + conv("num_output: 4 kernel_size: 1") +
     'layer { name: "sum" type: "Eltwise" bottom: "data" bottom: "conv" top: "sum" }\n', r"layer sum \(Eltwise\): "),
    ("reshape to the wrong count", INPUT + 'layer { name: "r" type: "Reshape" bottom: "data" top: "r" '
     'reshape_param { shape { dim: 1 dim: 7 } } }\n', r"layer r \(Reshape\): "),
    ("deconvolution group not dividing", INPUT + 'layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" '
     'convolution_param { num_output: 4 kernel_size: 2 group: 2 } }\n', r"layer d \(Deconvolution\): group 2"),
    ("nesting 10000 levels deep", INPUT + "layer { " * 10000 + "} " * 10000, r"net\.prototxt: "),
]:
    case(_name, "caffe prototxt", _pattern)(lambda folder, t=_text: convert(folder, t))


@case("not UTF-8", "caffe prototxt", r"net\.prototxt: cannot read prototxt")
def _latin1(folder):
    arguments = convert(folder, "")
    (folder / "net.prototxt").write_bytes(b'name: "caf\xe9"\n\xff\xfe')
    return arguments


@case("missing prototxt", "caffe prototxt", r"gone\.prototxt: cannot read prototxt")
def _no_prototxt(folder):
    return ["-m", "tools.convert_caffe", str(folder / "gone.prototxt"), "-o", str(folder / "out.onnx")]


# -- Caffe caffemodel (convert_caffe with weights) -------------------------------------------------
NET = INPUT + conv("num_output: 4 kernel_size: 3")


def blob(shape, values=None, legacy=False) -> "schema.BlobProto":
    proto = schema.BlobProto()
    if legacy:
        proto.num, proto.channels, proto.height, proto.width = shape
    else:
        proto.shape.dim.extend(shape)
    count = math.prod(shape) if values is None else values
    proto.data = np.full(min(count, 1000), 0.5, "<f4").tobytes()
    return proto


def caffemodel(*blobs, name="conv") -> bytes:
    net = schema.NetParameter()
    layer = net.layer.add(name=name, type="Convolution")
    layer.blobs.extend(blobs)
    return net.SerializeToString()


GOOD_WEIGHTS = caffemodel(blob((4, 3, 3, 3)), blob((4,)))

for _name, _data, _pattern in [
    ("empty caffemodel", b"", r"net\.caffemodel: holds no weight blobs"),
    ("random bytes", bytes(np.random.default_rng(3).integers(0, 256, 2000, np.uint8)),
     r"net\.caffemodel: (not a complete caffemodel|holds no weight blobs)"),
    ("truncated in a varint", GOOD_WEIGHTS[:len(GOOD_WEIGHTS) // 2] + b"\xff", r"not a complete caffemodel"),
    ("cut after one byte", GOOD_WEIGHTS[:1], r"not a complete caffemodel"),
    ("a length of 2^40 bytes", b"\x52" + b"\x80\x80\x80\x80\x80\x20" + b"\0" * 16, r"not a complete caffemodel"),
    ("a PNG as weights", png_bytes(), r"net\.caffemodel: (not a complete caffemodel|holds no weight blobs)"),
    ("a blob claiming a terabyte", caffemodel(blob((1000000, 1000000, 250), values=4), blob((4,))),
     r"conv: weight blob holds 4 values, its shape \(1000000, 1000000, 250\) needs 250000000000000"),
    ("legacy 4-D blob claiming a terabyte", caffemodel(blob((100000, 100000, 100, 1), values=4, legacy=True)),
     r"conv: weight blob holds 4 values"),
    ("a negative blob dim", caffemodel(blob((4, -3, 3, 3), values=36), blob((4,))), r"conv: weight blob holds 36 values"),
    ("weights of the wrong shape", caffemodel(blob((4, 3, 5, 5)), blob((4,))),
     r"layer conv \(Convolution\): weight blob 0 has shape \(4, 3, 5, 5\), expected \(4, 3, 3, 3\)"),
    ("bias of the wrong length", caffemodel(blob((4, 3, 3, 3)), blob((7,))), r"weight blob 1 has shape \(7,\)"),
    ("bias missing", caffemodel(blob((4, 3, 3, 3))), r"layer conv \(Convolution\): weight blob 1 is missing"),
    ("weights for another layer name", caffemodel(blob((4, 3, 3, 3)), blob((4,)), name="other"),
     r"layer conv \(Convolution\): weight blob 0 is missing"),
    ("a layer name with the wrong wire type", b"\x0a\x02ok" + b"\x32\x04\x08\x01\x10\x01" + b"\x0a\x05",
     r"net\.caffemodel: (not a complete caffemodel|holds no weight blobs)"),
]:
    case(_name, "caffe caffemodel", _pattern)(lambda folder, d=_data: convert(folder, NET, d))


# -- ONNX (classify --model) --------------------------------------------------------------------------
def run_onnx(folder: Path, model, name="model.onnx") -> list:
    path = folder / name
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    image = file_with(folder, "image.png", png_bytes())
    return ["-m", "tools.classify", "--model", str(path), str(image)]


def external_weight(location: str, length=None, dims=(4, 3, 3, 3)) -> TensorProto:
    tensor = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=list(dims), data_location=TensorProto.EXTERNAL)
    entries = {"location": location, **({"length": str(length)} if length is not None else {})}
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=value)
    return tensor


def _with_node(op: str, domain="") -> onnx.ModelProto:
    model = tiny_onnx()
    model.graph.node[1].op_type, model.graph.node[1].domain = op, domain
    if domain:
        model.opset_import.add(domain=domain, version=1)
    return model


def _cyclic() -> onnx.ModelProto:
    model = tiny_onnx()
    model.graph.node[1].input[0] = "flat"   # pool reads flat, which flat makes from pool
    return model


def _version(ir=None, opset=None) -> onnx.ModelProto:
    model = tiny_onnx()
    if ir:
        model.ir_version = ir
    if opset:
        model.opset_import[0].version = opset
    return model


def _raw_weight(dims) -> onnx.ModelProto:
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=list(dims), raw_data=b"\0" * 16)
    return tiny_onnx(initializer=[weight])


def _bad_reshape() -> onnx.ModelProto:
    model = tiny_onnx()
    shape = numpy_helper.from_array(np.array([1, 7], np.int64), "shape")
    model.graph.initializer.append(shape)
    model.graph.node[2].CopyFrom(helper.make_node("Reshape", ["pool", "shape"], ["flat"], name="flat"))
    return model


for _name, _model, _pattern in [
    ("random bytes", bytes(np.random.default_rng(4).integers(0, 256, 3000, np.uint8)), r"model\.onnx: not an ONNX model"),
    ("empty file", b"", r"model\.onnx: not an ONNX model \(no graph nodes\)"),
    ("truncated model", tiny_onnx().SerializeToString()[:200], r"model\.onnx: not an ONNX model"),
    ("a PNG as model", png_bytes(), r"model\.onnx: not an ONNX model"),
    ("missing initializer", tiny_onnx(initializer=[]), r"model\.onnx: ONNX Runtime cannot run it"),
    ("external data at an absolute path", tiny_onnx(initializer=[external_weight("/etc/passwd")]),
     r"initializer W: external data '/etc/passwd' lies outside the model's folder"),
    ("external data up the tree", tiny_onnx(initializer=[external_weight("../../secret.bin")]),
     r"initializer W: external data '\.\./\.\./secret\.bin' lies outside"),
    ("external data file missing", tiny_onnx(initializer=[external_weight("weights.bin")]),
     r"initializer W: external data file 'weights\.bin' is missing"),
    ("initializer claiming 2 GB+ inline", _raw_weight((1024, 1024, 1024)),
     r"initializer W: holds 16 bytes, its dims \[1024, 1024, 1024\] need 4294967296"),
    ("initializer claiming 2^70 values", _raw_weight((2 ** 35, 2 ** 35)), r"initializer W: holds 16 bytes"),
    ("initializer with a negative dim", _raw_weight((4, -3, 3, 3)), r"initializer W: negative dims"),
    ("an op ONNX Runtime lacks", _with_node("Frobnicate", "com.example"), r"ONNX Runtime cannot run it"),
    ("an unknown standard op", _with_node("Frobnicate"), r"ONNX Runtime cannot run it"),
    ("a cycle in the graph", _cyclic(), r"ONNX Runtime cannot run it"),
    ("IR version 99", _version(ir=99), r"ONNX Runtime cannot run it"),
    ("opset 999", _version(opset=999), r"ONNX Runtime cannot run it"),
    ("input that is not an image (rank 2)", tiny_onnx(dims=[1, 192]), r"has rank 2; an image input N x C x H x W"),
    ("input of 100000 x 100000", tiny_onnx(dims=[1, 3, 100000, 100000]), r"input data has shape .*over 16384"),
    ("a reshape that fails when run", _bad_reshape(), r"ONNX Runtime cannot run it on a blank image"),
]:
    case(_name, "onnx", _pattern)(lambda folder, m=_model: run_onnx(folder, m))


@case("external data claiming 3 GB of a small file", "onnx", r"initializer W: claims 3000000000 bytes")
def _long_external(folder):
    (folder / "weights.bin").write_bytes(b"\0" * 432)
    return run_onnx(folder, tiny_onnx(initializer=[external_weight("weights.bin", length=3_000_000_000)]))


@case("external data through a symlink out of the folder", "onnx", r"external data 'link\.bin' lies outside")
def _symlink(folder):
    outside = folder.parent / f"{folder.name}-outside.bin"
    outside.write_bytes(b"\0" * 432)
    (folder / "link.bin").symlink_to(outside)
    return run_onnx(folder, tiny_onnx(initializer=[external_weight("link.bin")]))


@case("two graph inputs", "onnx", r"model\.onnx|input")
def _two_inputs(folder):
    model = tiny_onnx()
    model.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 3, 8, 8]))
    return run_onnx(folder, model)


@case("dynamic dims everywhere", "onnx", "", exit=0)
def _dynamic(folder):
    return run_onnx(folder, tiny_onnx(dims=["N", "C", "H", "W"]))


# -- .pth (the legacy PyTorch reader; a file that would run code must never run it) ------------------
class _RunsCode:
    """Pickles to "call os.system(touch MARKER)" when loaded by a plain unpickler."""

    def __init__(self, marker: Path, function=("os", "system")):
        self.marker, self.function = marker, function

    def __reduce__(self):
        module = __import__(self.function[0])
        return getattr(module, self.function[1]), (f"touch {self.marker}",)


def read_pth(folder: Path, data: bytes) -> list:
    path = file_with(folder, "weights.pth", data)
    return ["-c", PTH_READER, str(path)]


def _pickles(*records) -> bytes:
    import pickle

    return b"".join(pickle.dumps(record, protocol=2) for record in records)


MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001


def _pth_case(name: str, pattern: str, records):
    case(name, "pth", pattern)(lambda folder: read_pth(folder, records(folder)))


_pth_case("os.system as the magic number", r"refusing pickle record posix\.system",
          lambda folder: _pickles(_RunsCode(folder / "MARKER")))
_pth_case("os.system inside the state dict", r"refusing pickle record posix\.system",
          lambda folder: _pickles(MAGIC, PROTOCOL, {"little_endian": True}, {"w": _RunsCode(folder / "MARKER")}))
_pth_case("subprocess.getoutput in the system info", r"refusing pickle record (subprocess|commands)\.getoutput",
          lambda folder: _pickles(MAGIC, PROTOCOL, _RunsCode(folder / "MARKER", ("subprocess", "getoutput"))))
_pth_case("builtins.eval in the key list", r"refusing pickle record (builtins|__builtin__)\.eval",
          lambda folder: _pickles(MAGIC, PROTOCOL, {}, {}, _RunsCode(folder / "MARKER", ("builtins", "eval"))))
_pth_case("a zip-format file", r"zip-format PyTorch file", lambda folder: _zip_pth())
_pth_case("wrong magic number", r"wrong magic number", lambda folder: _pickles(12345))
_pth_case("random bytes", r"not a readable PyTorch file",
          lambda folder: bytes(np.random.default_rng(5).integers(0, 256, 500, np.uint8)))
_pth_case("empty file", r"not a readable PyTorch file", lambda folder: b"")
_pth_case("a list instead of a state dict", r"holds a list, not a state dict",
          lambda folder: _pickles(MAGIC, PROTOCOL, {"little_endian": True}, [1, 2]))
_pth_case("storage claiming 2^60 elements", r"storage '0': file ends before its data",
          lambda folder: _state_with_storage(2 ** 60))
_pth_case("storage cut short", r"storage '0': file ends before its data", lambda folder: _state_with_storage(4)[:-4])


def _zip_pth() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    return buffer.getvalue()


def _state_with_storage(count: int) -> bytes:
    """A legacy file whose one tensor's storage header says ``count`` float elements (4 follow)."""
    import pickle
    import types

    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    torch.FloatStorage = type("FloatStorage", (), {"__module__": "torch"})

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2

    class Storage:
        pass

    class Tensor:
        def __reduce__(self):
            return _rebuild_tensor_v2, (Storage(), 0, (4,), (1,), False, {})

    class Writer(pickle.Pickler):
        def persistent_id(self, value):
            return ("storage", torch.FloatStorage, "0", "cpu", 4) if isinstance(value, Storage) else None

    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        buffer = io.BytesIO()
        Writer(buffer, protocol=2).dump({"w": Tensor()})
    finally:
        for name, module in saved.items():
            sys.modules.pop(name) if module is None else sys.modules.__setitem__(name, module)
    header = _pickles(MAGIC, PROTOCOL, {"little_endian": True})
    return header + buffer.getvalue() + _pickles(["0"]) + struct.pack("<q", count) + b"\0" * 16


# -- model.yaml (classify --model) ----------------------------------------------------------------------
def run_yaml(folder: Path, text: str) -> list:
    write_tiny(folder)
    path = folder / "model.yaml"
    path.write_text(text)
    image = file_with(folder, "image.png", png_bytes())
    return ["-m", "tools.classify", "--model", str(path), str(image)]


for _name, _text, _pattern in [
    ("a list, not a mapping", "- onnx: tiny.onnx\n", r"model\.yaml: model settings must be a mapping"),
    ("YAML syntax error", "source: {onnx: tiny.onnx\n", r"model\.yaml: cannot read model settings \(\w*Error"),
    ("no source", "name: x\n", r"source must name exactly one of onnx, caffe, builtin"),
    ("two sources", "source: {onnx: tiny.onnx, builtin: efficientnet_lite0}\n", r"source must name exactly one"),
    ("source is a number", "source: 5\n", r"model\.yaml: source: "),
    ("unknown input field", "source: {onnx: tiny.onnx}\ninput: {sise: [8, 8]}\n", r"input: unknown setting 'sise'"),
    ("size is text", "source: {onnx: tiny.onnx}\ninput: {size: big}\n", r"input: size: 'big' is not"),
    ("size of three numbers", "source: {onnx: tiny.onnx}\ninput: {size: [8, 8, 8]}\n", r"input: size: \[8, 8, 8\] is not"),
    ("channels is a list", "source: {onnx: tiny.onnx}\ninput: {channels: [3]}\n", r"input: channels: \[3\] is not"),
    ("raw_scale is text", "source: {onnx: tiny.onnx}\ninput: {raw_scale: high}\n", r"input: raw_scale: 'high' is not"),
    ("mean of two values for three channels", "source: {onnx: tiny.onnx}\ninput: {mean: [1, 2]}\n",
     r"input mean has 2 values, the net takes 3 channels"),
    ("transpose is text", "source: {onnx: tiny.onnx}\ninput: {transpose: maybe}\n", r"input: transpose: 'maybe' is not"),
    ("input is a list", "source: {onnx: tiny.onnx}\ninput: [1, 2]\n", r"model\.yaml: input: "),
    ("model file missing", "source: {onnx: gone.onnx}\n", r"gone\.onnx: no such model file"),
    ("labels is a number", "source: {onnx: tiny.onnx}\nlabels: 7\n", r"model\.yaml: labels: "),
]:
    case(_name, "model.yaml", _pattern)(lambda folder, t=_text: run_yaml(folder, t))


# -- settings (classify --settings) ----------------------------------------------------------------------
def run_settings(folder: Path, text, name="bad_settings.py") -> list:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return classify(folder, file_with(folder, "image.png", png_bytes()), "--settings", path)


for _name, _text, _pattern in [
    ("syntax error", "model_input = {\n", r"bad_settings\.py: line 1: '\{' was never closed"),
    ("typo in a name", "# mine\ninput_fit_mod = 'crop'\n",
     r"bad_settings\.py: line 2: unknown setting 'input_fit_mod' \(did you mean 'input_fit_mode'\?"),
    ("unknown name", "x = 1\n", r"bad_settings\.py: line 1: unknown setting 'x' \(settings\.py lists every name\)"),
    ("undefined name", "provider = cuda\n", r"bad_settings\.py: line 1: NameError: name 'cuda' is not defined"),
    ("division by zero", "global_scale = 1 / 0\n", r"bad_settings\.py: line 1: ZeroDivisionError"),
    ("import of a missing module", "import not_a_module\n", r"line 1: ModuleNotFoundError"),
    ("unexpected indent", "x = 1\n    y = 2\n", r"bad_settings\.py: line 2: unexpected indent"),
    ("tabs and spaces mixed", "if True:\n\tx = 1\n        y = 2\n", r"bad_settings\.py: line 3: "),
    ("not UTF-8", b"model = '\xff\xfe'\n", r"bad_settings\.py: line 1: "),
    ("a binary file", b"\x00\x01\x02", r"bad_settings\.py: not Python: "),
    ("raising SystemExit", "raise SystemExit(0)\n", r"bad_settings\.py: line 1: SystemExit"),
    ("image_max_pixels as text", "image_max_pixels = 'many'\n", r"image_max_pixels = 'many' is not"),
    ("image_max_file_bytes negative", "image_max_file_bytes = -1\n", r"image_max_file_bytes = -1 is not"),
    ("input_fit_mode unknown", "input_fit_mode = 'zoom'\n", r"invalid choice|input_fit_mode"),
]:
    case(_name, "settings", _pattern)(lambda folder, t=_text: run_settings(folder, t))


@case("missing settings file", "settings", r"gone\.py: no such settings file")
def _no_settings(folder):
    return classify(folder, file_with(folder, "image.png", png_bytes()), "--settings", folder / "gone.py")


@case("a folder as settings file", "settings", r"dir: no such settings file")
def _dir_settings(folder):
    (folder / "dir").mkdir()
    return classify(folder, file_with(folder, "image.png", png_bytes()), "--settings", folder / "dir")


# -- image lists (classify --list) ---------------------------------------------------------------------
def run_list(folder: Path, text, exit_images=("a.png", "b c.png", "ü.png")) -> list:
    for name in exit_images:
        file_with(folder, name, png_bytes())
    path = folder / "images.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return classify(folder, "--list", path)


for _name, _text, _pattern, _exit in [
    ("a missing file among good ones", "a.png\ngone.png\n", r"gone\.png: no such image file", 1),
    ("a folder listed", "a.png\nsub\n", r"sub: (not a file|no such image file)", 1),
    ("an unclosed quote", '"b c.png\n', r'"b: no such image file', 1),
    ("absolute path that does not exist", "/nowhere/x.png\n", r"/nowhere/x\.png: no such image file", 1),
    ("a non-UTF-8 name that does not exist", b"caf\xe9.png\n", r"caf.*\.png: no such image file", 1),
    ("empty list", "", r"images\.txt: no images in the list", 2),
    ("only comments and blank lines", "# nothing\n\n   \n", r"images\.txt: no images in the list", 2),
    ("a binary file as list", b"\x89PNG\r\n\x1a\n\0\0\0", r"images\.txt: a binary file, not a list", 2),
]:
    case(_name, "lists", _pattern, _exit)(lambda folder, t=_text: run_list(folder, t))


@case("list file missing", "lists", r"gone\.txt: cannot read")
def _no_list(folder):
    return classify(folder, "--list", folder / "gone.txt")


@case("CRLF, BOM, comments, blanks, quotes, spaces, non-ASCII", "lists", "", exit=0)
def _odd_list(folder):
    text = '\ufeff# my images\r\na.png 3\r\n\r\n  "b c.png"  a label\r\nü.png\r\n\t# indented comment\r\n'
    return run_list(folder, text)


@case("a non-UTF-8 file name", "lists", "", exit=0)
def _latin1_name(folder):
    name = b"caf\xe9.png"
    (folder / name.decode("utf-8", "surrogateescape")).write_bytes(png_bytes())
    return run_list(folder, name + b"\n")


# -- the app's entry point (run_toolbox.py --screenshot) ---------------------------------------------
def run_app(folder: Path, *arguments) -> list:
    return ["run_toolbox.py", "--model", str(write_tiny(folder)), "--screenshot", str(folder / "shot.png"),
            *map(str, arguments)]


for _name, _category, _write, _pattern in [
    ("app: settings with a syntax error", "settings", lambda folder: ["--settings", file_with(folder, "s.py", b"x = (\n")],
     r"s\.py: line 1: '\(' was never closed"),
    ("app: a binary file as image list", "lists", lambda folder: ["--input", file_with(folder, "l.txt", b"\0\1\2")],
     r"l\.txt: a binary file, not a list"),
    ("app: a list of comments only", "lists", lambda folder: ["--input", file_with(folder, "l.txt", b"# none\n")],
     r"l\.txt: no images in the list"),
    ("app: an empty folder", "images", lambda folder: ["--input", (folder / "empty").mkdir() or folder / "empty"],
     r"empty: no files"),
]:
    case(_name, _category, _pattern)(lambda folder, w=_write: run_app(folder, *w(folder)))


def write_corpus(root: Path) -> list:
    """Write every case into root/<number>; returns [(case, folder, arguments)]."""
    made = []
    for number, item in enumerate(CASES):
        folder = root / f"{number:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        made.append((item, folder, item.make(folder)))
    return made


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.splitlines()[0])
    out = Path(sys.argv[1])
    listing = [dict(name=c.name, category=c.category, pattern=c.pattern, exit=c.exit, folder=str(f), command=a)
               for c, f, a in write_corpus(out)]
    (out / "cases.json").write_text(json.dumps(listing, indent=1))
    bad = sum(c.bad for c in CASES)
    print(f"{out}: {len(CASES)} cases ({bad} bad inputs, {len(CASES) - bad} odd ones the tools read)")
