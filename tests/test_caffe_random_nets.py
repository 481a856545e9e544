"""Deploy-only Caffe nets with random He-init weights: every layer agrees with OpenCV's importer."""
import pytest

from app.net.caffe.convert import convert_random
from app.net.onnx_graph import declared_layers
from tests.test_caffe_opencv import compare_with_opencv, random_input

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
    "fcn8s": "fcn8s_voc_deploy/deploy.prototxt",
}
# FCN-8s declares 500 x 500 but takes any size (its Crop layers follow the input); a small one is fast
INPUT_SHAPE = {"fcn8s": (1, 3, 48, 80)}


@pytest.fixture
def caffemodel(tmp_path):
    """Where a test writes its random weights, removed afterwards (VGG's weigh half a gigabyte)."""
    path = tmp_path / "random.caffemodel"
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.parametrize("name", sorted(DEPLOY))
def test_random_weight_net_matches_opencv(testdata, caffemodel, name):
    prototxt, input_shape = testdata / DEPLOY[name], INPUT_SHAPE.get(name)
    model = convert_random(prototxt, 0, caffemodel, input_shape=input_shape)  # OpenCV reads the caffemodel
    compared = compare_with_opencv(model, prototxt, caffemodel, random_input(model, 1))
    assert set(compared) == declared_layers(model)
    if input_shape:  # the output follows the input size
        assert compared[model.graph.output[0].name][2:] == input_shape[2:]
