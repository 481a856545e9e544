"""The app's screenshots are the same (within one gray level) whether its backward passes run as
ONNX Runtime graphs or in NumPy: the default model, every backprop mode, at a deep layer. The
status line's first row is left out: it ends with the frame rate, which differs between any two runs."""
import cv2
import numpy as np
import pytest

from app.inputs import open_source
from app.net import Net
from app.ui.app import App, screenshot
from app.ui.state import BACKPROP_MODES
from tests import ui_support

DEEP = "o" * 12   # the default model, twelve layers down: a block's depthwise conv, ReLU6, strides


@pytest.fixture(scope="module")
def net():
    return Net.load(provider="cpu")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return ui_support.write_images(tmp_path_factory.mktemp("digits"), count=1)


def shot(net, folder, keys, path, engine: str) -> np.ndarray:
    net.backward_engine = engine
    return cv2.imread(str(screenshot(net, ui_support.settings(), open_source(str(folder)), path, keys)))


@pytest.mark.parametrize("mode_index", range(1, len(BACKPROP_MODES)))
def test_graph_and_numpy_screenshots_match(net, digits, tmp_path, mode_index):
    keys = DEEP + "b" * mode_index
    graph = shot(net, digits, keys, tmp_path / "graph.png", "graph")
    numpy = shot(net, digits, keys, tmp_path / "numpy.png", "numpy")
    back = App(net, ui_support.settings()).rects["back"]
    gray = cv2.cvtColor(graph[back.top:back.top + back.height, back.left:back.left + back.width], cv2.COLOR_BGR2GRAY)
    low, high = np.percentile(gray, [1, 99])
    assert high - low > 50, "a flat back pane compares nothing"
    status = App(net, ui_support.settings()).rects["status"]
    for image in (graph, numpy):   # the status line's first row ends with the frame rate
        image[status.top:status.top + status.height // 2] = 0
    assert np.abs(graph.astype(int) - numpy.astype(int)).max() <= 1
