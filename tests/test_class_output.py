"""Which output holds the classes: the yaml's prob_layer, else the output with one value per label,
else a net's single vector output; detectors (MTCNN, UltraFace) have none and say so."""
import numpy as np
import pytest
import yaml

from app.errors import DeepVisError
from app.net import Net
from app.net.net import NO_CLASS_OUTPUT
from app.ui import draw as paint
from app.ui.app import App
from app.ui.panes import aux
from tests import ui_support
from tests.test_net import mnist_digit

DETECTORS = {
    "mtcnn_pnet": ("mtcnn_pnet/det1.prototxt", {}),
    "mtcnn_onet": ("mtcnn_onet/det3.prototxt", {}),
    "ultraface_onnx": ("onnx_ultraface_slim320/version-slim-320.onnx", ui_support.ULTRAFACE_INPUT),
    "ultraface_caffe": ("ultraface_slim320_caffe/slim-320.prototxt", ui_support.ULTRAFACE_INPUT),
}


@pytest.mark.parametrize("name", DETECTORS)
def test_detectors_without_a_yaml_have_no_class_output(testdata, tmp_path, monkeypatch, name):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    path, input_settings = DETECTORS[name]
    net = Net.load(str(testdata / path), provider="cpu", input=input_settings or None)
    assert net.prob_layer() is None and net.logits_layer() is None
    with pytest.raises(DeepVisError, match=NO_CLASS_OUTPUT):
        net.predict([np.zeros((60, 80, 3), np.uint8)])
    app = App(net, ui_support.settings())
    assert app.info.class_layers == () and app.state.class_layers == ()
    app.state = app.state.__class__(**{**vars(app.state), "cursor_on_layers": True})
    pane = aux.draw(app.view(None, None), 300, 300)
    np.testing.assert_array_equal(pane, paint.message(300, 300, ["Predictions", NO_CLASS_OUTPUT], app.view(None, None).font))


def test_labels_pick_the_output_with_one_value_per_label(testdata, tmp_path, monkeypatch):
    """MTCNN ONet has three outputs (2 face scores, 4 box offsets, 10 landmarks): two labels name
    the scores, and backprop from a class starts at the Softmax's input."""
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "labels.txt").write_text("not a face\nface\n")
    folder = testdata / "mtcnn_onet"
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({
        "name": "onet", "source": {"caffe": {"prototxt": str(folder / "det3.prototxt"),
                                             "weights": str(folder / "det3.caffemodel")}},
        "labels": "labels.txt"}))
    net = Net.load(str(tmp_path / "model.yaml"), provider="cpu")
    assert (net.prob_layer(), net.logits_layer()) == ("prob1", "conv6-1")
    ranked = net.predict([np.zeros((48, 48, 3), np.uint8)], top=2)[0]
    assert {label for label, _ in ranked} == {"face", "not a face"}
    assert sum(probability for _, probability in ranked) == pytest.approx(1.0, abs=1e-5)


def test_a_single_vector_output_is_the_class_output_without_labels(testdata):
    net = ui_support.mnist_net()
    assert net.prob_layer() == net.logits_layer() == "Plus214_Output_0"
    assert net.predict([mnist_digit(7)], top=1)[0][0][0] == "class 7"

