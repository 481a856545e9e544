"""Deploy-only Caffe nets with random He-init weights: every layer agrees with OpenCV's importer."""
import contextlib

import numpy as np
import pytest

from app.net.caffe import convert, schema
from app.net.caffe.registry import LayerContext
from tests.test_caffe_opencv import compare_with_opencv

DEPLOY = {
    "caffenet": "caffenet_deploy/deploy.prototxt",
    "alexnet": "alexnet_deploy/deploy.prototxt",
    "caffenet_yos": "caffenet_yos_deploy/caffenet-yos-deploy.prototxt",
    "googlenet": "googlenet_deploy/deploy.prototxt",
    "squeezenet_1_0": "squeezenet_v1_0_deploy/deploy.prototxt",
    "squeezenet_1_1": "squeezenet_v1_1_deploy/deploy.prototxt",
    "resnet50": "resnet50_deploy/ResNet-50-deploy.prototxt",
    "mobilenet_v1": "mobilenet_v1_deploy/mobilenet_deploy.prototxt",
    "mobilenet_v2": "mobilenet_v2_deploy/mobilenet_v2_deploy.prototxt",
    "vgg16": "vgg16_deploy/VGG_ILSVRC_16_layers_deploy.prototxt",
}


@contextlib.contextmanager
def random_blobs(rng: np.random.Generator, made: dict):
    """Converters get He-init weight blobs of the shape they ask for; recorded in `made`."""
    original_blob, original_has = LayerContext.blob, LayerContext.has_blob

    def blob(ctx, index, shape):
        shape = tuple(int(d) for d in shape)
        if ctx.layer.type == "BatchNorm":  # mean, positive variance, scale factor
            array = (rng.uniform(-0.5, 0.5, shape) if index == 0 else rng.uniform(0.5, 2, shape)
                     if index == 1 else np.ones(shape))
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            array = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in) if len(shape) > 1 \
                else rng.uniform(-0.1, 0.1, shape) + (1.0 if ctx.layer.type == "Scale" and index == 0 else 0)
        array = array.astype(np.float32)
        made.setdefault(ctx.layer.name, {})[index] = array
        return array

    LayerContext.blob = blob
    LayerContext.has_blob = lambda ctx, index: True
    try:
        yield
    finally:
        LayerContext.blob, LayerContext.has_blob = original_blob, original_has


def write_caffemodel(made: dict, path) -> None:
    net = schema.NetParameter()
    for name, blobs in made.items():
        layer = net.layer.add()
        layer.name = name
        for index in sorted(blobs):
            blob = layer.blobs.add()
            blob.shape.dim.extend(blobs[index].shape)
            blob.data = blobs[index].astype("<f4").tobytes()
    path.write_bytes(net.SerializeToString())


@pytest.fixture(scope="session")
def random_weights(testdata, tmp_path_factory):
    """Per net name: (prototxt, caffemodel with random weights), each made once per session."""
    folder, cache = tmp_path_factory.mktemp("caffe_random"), {}

    def make(name: str):
        if name not in cache:
            prototxt, made = testdata / DEPLOY[name], {}
            with random_blobs(np.random.default_rng(0), made):
                convert(prototxt, None)
            caffemodel = folder / f"{name}.caffemodel"
            write_caffemodel(made, caffemodel)
            cache[name] = (prototxt, caffemodel)
        return cache[name]
    return make


@pytest.mark.parametrize("name", sorted(DEPLOY))
def test_random_weight_net_matches_opencv(random_weights, name):
    prototxt, caffemodel = random_weights(name)
    model = convert(prototxt, caffemodel)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(1).uniform(-1, 1, [1] + shape).astype(np.float32)
    assert compare_with_opencv(prototxt, caffemodel, x) >= 5
