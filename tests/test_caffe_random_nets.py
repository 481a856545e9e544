"""Deploy-only Caffe nets with random He-init weights: every layer agrees with OpenCV's importer."""
import numpy as np
import pytest

from app.net.caffe import convert
from app.net.caffe.random_weights import convert_random
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


@pytest.fixture(scope="session")
def random_weights(testdata, tmp_path_factory):
    """Per net name: (prototxt, caffemodel with random weights), each made once per session."""
    folder, cache = tmp_path_factory.mktemp("caffe_random"), {}

    def make(name: str):
        if name not in cache:
            prototxt, caffemodel = testdata / DEPLOY[name], folder / f"{name}.caffemodel"
            convert_random(prototxt, 0, caffemodel)
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
