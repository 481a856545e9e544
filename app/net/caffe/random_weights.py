"""Seeded random weights for a prototxt that comes without them, written as a caffemodel.

The converter (convert.convert_random) asks for each weight blob in the shape its layer needs;
`RandomBlobs` answers with He-initialised values (so activations keep their scale through deep
nets) and remembers them, and `write_caffemodel` stores them in Caffe's binary format, which
Caffe and OpenCV read as well.
"""
from pathlib import Path

import numpy as np

from app.errors import DeepVisError
from app.net.caffe import schema


class RandomBlobs:
    """A `make_blob` for `convert`: random weights from one seed, kept per layer name in `made`
    when ``keep`` (to write them as a caffemodel; VGG16's weigh 553 MB)."""

    def __init__(self, seed: int, keep: bool = True):
        self.rng = np.random.default_rng(seed)
        self.made = {}
        self.keep = keep

    def __call__(self, layer, index: int, shape: tuple) -> np.ndarray:
        if layer.type == "BatchNorm":  # running mean, a positive variance, the scale factor 1
            array = (self.rng.uniform(-0.5, 0.5, shape) if index == 0
                     else self.rng.uniform(0.5, 2, shape) if index == 1 else np.ones(shape))
        elif len(shape) > 1:  # filters and matrices: He init over the fan-in
            array = self.rng.standard_normal(shape, np.float32)
            array *= np.float32(np.sqrt(2.0 / int(np.prod(shape[1:]))))
        else:  # biases, slopes, scales (a Scale's factor about 1)
            array = self.rng.uniform(-0.1, 0.1, shape) + (1.0 if layer.type == "Scale" and index == 0 else 0.0)
        array = array.astype(np.float32, copy=False)
        if self.keep:
            self.made.setdefault(layer.name, {})[index] = array
        return array


def write_caffemodel(blobs: dict, path: Path) -> None:
    """A caffemodel (current format) holding `blobs`: layer name -> {blob index: array}."""
    net = schema.NetParameter()
    for name, arrays in blobs.items():
        layer = net.layer.add()
        layer.name = name
        for index in sorted(arrays):
            blob = layer.blobs.add()
            blob.shape.dim.extend(arrays[index].shape)
            blob.data = arrays[index].astype("<f4").tobytes()
    try:
        Path(path).write_bytes(net.SerializeToString())
    except OSError as error:
        raise DeepVisError(f"{path}: cannot write caffemodel ({error.strerror})") from None
