"""What the command-line tools share: the settings files, --model / --cpu over them, one-line errors."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ui_support
from tools import classify, cli, export_volume, find_maxes, layers, occlusion, optimize_image, receptive_field

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mnist_settings(testdata, tmp_path):
    """A settings file naming MNIST as the model, with its input settings, on the GPU where there is one."""
    path = tmp_path / "settings_mnist.py"
    path.write_text(f"model = {str(ui_support.MNIST)!r}\nmodel_input = {ui_support.MNIST_INPUT!r}\n"
                    "provider = 'cuda'\n")
    return path


def test_a_tool_loads_the_model_and_input_its_settings_file_names(mnist_settings, capsys):
    layers.main(["--settings", str(mnist_settings), "--cpu"])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("mnist-8: input Input3 1 x 28 x 28") and first.endswith("CPUExecutionProvider")
    settings = cli.settings(["--settings", str(mnist_settings), "--cpu"])
    net = cli.load_net(cli.parser("t", "t").parse_args([]), settings)
    input_settings = (net.spec.input.channel_swap, net.spec.input.raw_scale)
    assert net.spec.name == "mnist-8" and input_settings == ((0,), 255)   # not the defaults (2, 1, 0), 1
    assert settings.provider == "cpu" and cli.settings(["--settings", str(mnist_settings)]).provider == "cuda"


def test_model_on_the_command_line_wins_over_the_settings_file(mnist_settings, testdata, capsys):
    lenet = testdata / "lenet_mnist" / "lenet.prototxt"
    layers.main(["--settings", str(mnist_settings), "--cpu", "--model", str(lenet)])
    assert capsys.readouterr().out.startswith("lenet: input data 1 x 28 x 28")


BAD_MODEL = {   # each tool's arguments but --model
    classify: ["image.png"],
    export_volume: ["image.png", "--layer", "conv1", "--out", "volume"],
    find_maxes: ["--images", "images", "--out", "out"],
    layers: [],
    occlusion: ["image.png", "--layer", "conv1", "--unit", "0", "--out", "map.png"],
    optimize_image: ["--layer", "conv1", "--out", "out"],
    receptive_field: [],
}


@pytest.mark.parametrize("tool", BAD_MODEL, ids=lambda tool: tool.__name__)
def test_a_bad_model_exits_with_one_line(tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        tool.main(BAD_MODEL[tool] + ["--model", "nope.onnx", "--cpu"])
    assert stop.value.code != 0
    assert capsys.readouterr().err == "error: nope.onnx: no such model file\n"


def test_the_app_exits_with_one_line_for_a_bad_model(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "run_toolbox.py"), "--model", "nope.onnx", "--cpu",
                           "--screenshot", str(tmp_path / "shot.png")], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and done.stderr == "error: nope.onnx: no such model file\n"


def test_a_missing_settings_file_exits_with_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        layers.main(["--settings", "nowhere.py"])
    assert stop.value.code != 0 and capsys.readouterr().err == "error: nowhere.py: no such settings file\n"
