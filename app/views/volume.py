"""3-D activation volumes: a layer's C x H x W activation as a NRRD or .npy file that volume viewers
open (3D Slicer, ITK-SNAP, Fiji, ParaView), read back, and drawn as a rotating maximum-intensity
projection for the app.
"""
import gzip
import re
from pathlib import Path

import cv2
import numpy as np

from app.errors import DeepVisError
from app.files import write_atomic

_NRRD_TYPES = {"float": "f4", "double": "f8", "uchar": "u1", "signed char": "i1", "short": "i2",
               "ushort": "u2", "int": "i4", "uint": "u4", "longlong": "i8", "ulonglong": "u8"}
_TYPE_ALIASES = {"float32": "float", "float64": "double", "uint8": "uchar", "unsigned char": "uchar",
                 "int8": "signed char", "int16": "short", "uint16": "ushort", "unsigned short": "ushort",
                 "int32": "int", "uint32": "uint", "unsigned int": "uint", "int64": "longlong", "uint64": "ulonglong"}


def write_nrrd(path, volume: np.ndarray, content: str = "") -> Path:
    """Write ``volume`` (any rank; C x H x W for a layer) as float32, raw, little endian NRRD.

    NRRD lists sizes fastest axis first, so a C x H x W array is "sizes: W H C".
    """
    volume = np.ascontiguousarray(volume, dtype="<f4")
    content = re.sub(r"[\r\n]", " ", content)
    header = ["NRRD0004", "# DeepVis Toolbox activation volume", "type: float",
              f"dimension: {volume.ndim}", "sizes: " + " ".join(str(s) for s in volume.shape[::-1]),
              "kinds: " + " ".join(["domain"] * volume.ndim), "endian: little", "encoding: raw"]
    if content:
        header.append(f"content: {content}")
    head = ("\n".join(header) + "\n\n").encode("ascii", "replace")
    return write_atomic(path, lambda stream: (stream.write(head), stream.write(volume.tobytes())))


def _header_fields(path: Path, stream) -> dict:
    magic = stream.readline()
    if not magic.startswith(b"NRRD000"):
        raise DeepVisError(f"{path}: not a NRRD file")
    fields = {}
    for line in iter(stream.readline, b""):
        text = line.decode("ascii", "replace").rstrip("\r\n")
        if not text:
            return fields
        if text.startswith("#") or ":=" in text:  # comments and key/value pairs carry no layout
            continue
        key, _, value = text.partition(":")
        fields[key.strip().lower()] = value.strip()
    raise DeepVisError(f"{path}: NRRD header has no blank line before the data")


def read_nrrd(path) -> np.ndarray:
    """Read a NRRD file with attached raw or gzip data (what ``write_nrrd`` and most tools write)."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            fields = _header_fields(path, stream)
            data = stream.read()
    except OSError as error:
        raise DeepVisError(f"{path}: cannot read ({error.strerror})") from None
    if "data file" in fields or "datafile" in fields:
        raise DeepVisError(f"{path}: detached NRRD data files are not supported")
    type_name = _TYPE_ALIASES.get(fields.get("type", ""), fields.get("type", ""))
    if type_name not in _NRRD_TYPES:
        raise DeepVisError(f"{path}: NRRD type {fields.get('type')!r} is not supported")
    encoding = fields.get("encoding", "")
    if encoding in ("gzip", "gz"):
        data = gzip.decompress(data)
    elif encoding != "raw":
        raise DeepVisError(f"{path}: NRRD encoding {encoding!r} is not supported (raw or gzip)")
    order = ">" if fields.get("endian") == "big" else "<"
    shape = tuple(int(s) for s in fields.get("sizes", "").split())[::-1]
    dtype = np.dtype(order + _NRRD_TYPES[type_name])
    if not shape or len(shape) != int(fields.get("dimension", len(shape))):
        raise DeepVisError(f"{path}: NRRD sizes {fields.get('sizes')!r} do not match its dimension")
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) < expected:
        raise DeepVisError(f"{path}: NRRD data holds {len(data)} bytes, {expected} expected")
    return np.frombuffer(data[:expected], dtype).reshape(shape).astype(dtype.newbyteorder("="))


def read_volume(path) -> np.ndarray:
    """Read a volume written by ``export_volume`` (.nrrd or .npy; .npy never unpickles)."""
    path = Path(path)
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DeepVisError(f"{path}: cannot read as .npy ({error})".splitlines()[0]) from None
    return read_nrrd(path)


def export_volume(activation: np.ndarray, stem, layer: str = "") -> tuple:
    """Write one sample's activation as ``stem``.nrrd and ``stem``.npy; returns both paths.

    A vector layer (C,) is written as C x 1 x 1 so viewers still see a volume.
    """
    activation = np.asarray(activation, dtype=np.float32)
    if activation.ndim == 1:
        activation = activation[:, None, None]
    stem = Path(stem)
    nrrd = write_nrrd(stem.with_name(stem.name + ".nrrd"), activation, content=layer)
    npy = write_atomic(stem.with_name(stem.name + ".npy"), lambda stream: np.save(stream, activation))
    return nrrd, npy


# -- the in-app 3-D view: a rotating maximum-intensity projection ------------------------------
def _pool_channels(volume: np.ndarray, max_depth: int) -> np.ndarray:
    """Max-pool the channel axis down to at most ``max_depth`` slices (the projection is a max, so
    seen along the channel axis nothing is lost)."""
    group = -(-len(volume) // max_depth)
    if group == 1:
        return volume
    padded = np.concatenate([volume, np.full((-len(volume) % group,) + volume.shape[1:], volume.min())])
    return padded.reshape((-1, group) + volume.shape[1:]).max(axis=1)


def rotation(angle: float, elevation: float) -> np.ndarray:
    """World (x = width, y = height downwards, z = channels) -> screen (u, v, depth): a turn of
    ``angle`` degrees about the vertical axis, then a tilt of ``elevation`` degrees."""
    a, e = np.radians(angle), np.radians(elevation)
    turn = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return tilt @ turn


def projection(volume: np.ndarray, angle: float, elevation: float = 20.0, size: int = 160,
               max_depth: int = 128) -> tuple:
    """Maximum along each viewing ray of a C x H x W volume drawn as the cube [-1, 1]^3.

    Returns (image size x size in [0, 1] (min-max of the volume), mask of rays that hit the cube).
    Angle 0, elevation 0 looks down the channel axis: the spatial map's maximum over channels.
    """
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise DeepVisError(f"a 3-D view needs a C x H x W activation, got shape {volume.shape}")
    low, high = float(volume.min()), float(volume.max())
    scaled = _pool_channels((volume - low) / (high - low) if high > low else np.zeros_like(volume), max_depth)
    extent = np.sqrt(3.0)  # half the cube's diagonal: the cube fits at any angle
    screen = np.linspace(-extent, extent, size)
    v, u = np.meshgrid(screen, screen, indexing="ij")
    world_of = rotation(angle, elevation).T  # screen -> world
    shape = np.array(scaled.shape[::-1])  # W, H, C matches world x, y, z
    on_screen = world_of[:, :2] @ np.stack([u.ravel(), v.ravel()])  # world points at depth 0
    best, hit = np.zeros((size, size), np.float32), np.zeros((size, size), bool)
    for depth in np.linspace(-extent, extent, int(2 * max(scaled.shape)) + 8):
        points = on_screen + depth * world_of[:, 2:]
        inside = (np.abs(points) <= 1.0).all(axis=0)
        index = np.minimum(((points + 1.0) / 2.0 * shape[:, None]).astype(int), shape[:, None] - 1)
        values = np.where(inside, scaled[index[2].clip(0), index[1].clip(0), index[0].clip(0)], 0.0)
        best = np.maximum(best, values.reshape(size, size))
        hit |= inside.reshape(size, size)
    return best, hit


def _draw_box(image: np.ndarray, angle: float, elevation: float) -> None:
    """Outline the cube; the edge along the channel axis is drawn brighter and labelled C."""
    size = image.shape[0]
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    screen = (rotation(angle, elevation) @ corners.T)[:2].T
    pixels = ((screen / np.sqrt(3.0) + 1.0) / 2.0 * (size - 1)).round().astype(int)
    for a in range(8):
        for b in range(a + 1, 8):
            differs = corners[a] != corners[b]
            if differs.sum() == 1:
                channel_edge = differs[2] and corners[a][0] == -1 and corners[a][1] == 1
                color = (255, 255, 255) if channel_edge else (120, 120, 120)
                cv2.line(image, tuple(map(int, pixels[a])), tuple(map(int, pixels[b])), color, 1, cv2.LINE_AA)
    label = pixels[0b011]  # (-1, 1, 1): the far end of the labelled channel edge
    cv2.putText(image, "C", (int(label[0]) + 3, int(label[1]) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (255, 255, 255), 1, cv2.LINE_AA)


def mip_image(volume: np.ndarray, angle: float, elevation: float = 20.0, size: int = 300,
              colormap: int = cv2.COLORMAP_INFERNO, render_size: int = 160) -> np.ndarray:
    """A size x size BGR picture of the volume's maximum-intensity projection at ``angle`` degrees,
    with the cube outlined. Step ``angle`` between frames to rotate it."""
    best, hit = projection(volume, angle, elevation, render_size)
    image = cv2.applyColorMap((best * 255 + 0.5).astype(np.uint8), colormap)
    image[~hit] = (30, 30, 30)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)
    _draw_box(image, angle, elevation)
    return image
