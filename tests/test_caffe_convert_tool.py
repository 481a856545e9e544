"""python -m tools.convert_caffe: trained, train_val and detection nets to ONNX files the app loads."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.net import Net
from tools.convert_caffe import main

SSD_POST_PROCESSING = [f"{name}_mbox_priorbox" for name in
                       ("conv11", "conv13", "conv14_2", "conv15_2", "conv16_2", "conv17_2")] + ["detection_out"]


def test_cifar10_quick_converts_and_loads(testdata, tmp_path, capsys):
    folder, output = testdata / "cifar10_quick", tmp_path / "cifar.onnx"
    main([str(folder / "cifar10_quick.prototxt"), str(folder / "cifar10_quick_iter_5000.caffemodel"),
          "-o", str(output)])
    assert str(output) in capsys.readouterr().out
    net = Net.load(str(output), provider="cpu")
    assert [layer.name for layer in net.layers][:3] == ["conv1", "pool1", "relu1"]
    assert net.input_shape == (3, 32, 32)
    result = net.forward(np.zeros((2, 3, 32, 32), np.float32))
    assert result["prob"].shape == (2, 10)


def test_train_val_net_needs_and_takes_an_input_shape(testdata, tmp_path, capsys):
    prototxt, output = testdata / "nin_cifar10_prototxt" / "train_val.prototxt", tmp_path / "nin.onnx"
    with pytest.raises(SystemExit) as exit_status:
        main([str(prototxt), "-o", str(output)])
    assert exit_status.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "input shape" in message and "Traceback" not in message
    main([str(prototxt), "-o", str(output), "--input-shape", "1,3,32,32"])
    model = onnx.load(str(output))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]] == [3, 32, 32]
    assert not any("loss" in node.name or "accuracy" in node.name for node in model.graph.node)


def test_detection_net_is_cut_before_its_post_processing(testdata, tmp_path, capsys):
    prototxt, output = testdata / "mobilenet_ssd_deploy" / "MobileNetSSD_deploy.prototxt", tmp_path / "ssd.onnx"
    with pytest.raises(SystemExit):
        main([str(prototxt), "-o", str(output)])
    message = capsys.readouterr().err
    assert "conv11_mbox_priorbox" in message and "PriorBox" in message and message.count("\n") == 1
    main([str(prototxt), "-o", str(output), "--cut-before", *SSD_POST_PROCESSING])
    model = onnx.load(str(output))
    outputs = {o.name for o in model.graph.output}
    assert "mbox_loc" in outputs and not {"mbox_priorbox", "detection_out"} & outputs


def test_random_weights_are_seeded_and_written_for_opencv(testdata, tmp_path, capsys):
    prototxt = testdata / "squeezenet_v1_1_deploy" / "deploy.prototxt"
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        main([str(prototxt), "-o", str(tmp_path / f"{name}.onnx"), "--random-weights", seed])
    assert str(tmp_path / "a.caffemodel") in capsys.readouterr().out
    weights = {name: (tmp_path / f"{name}.caffemodel").read_bytes() for name in "abc"}
    assert weights["a"] == weights["b"] != weights["c"]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 227, 227)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    ours = session.run(["prob"], {session.get_inputs()[0].name: x})[0]
    reference = cv2.dnn.readNetFromCaffe(str(prototxt), str(tmp_path / "a.caffemodel"))
    reference.setInput(x)
    np.testing.assert_allclose(ours.reshape(-1), reference.forward("prob").reshape(-1), rtol=1e-4, atol=1e-7)
    with pytest.raises(SystemExit):
        main([str(prototxt), str(tmp_path / "a.caffemodel"), "-o", str(tmp_path / "d.onnx"), "--random-weights", "1"])
    assert "not both" in capsys.readouterr().err


def test_command_line_prints_one_error_line(tmp_path):
    missing = tmp_path / "missing.prototxt"
    done = subprocess.run([sys.executable, "-m", "tools.convert_caffe", str(missing), "-o", str(tmp_path / "x.onnx")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and str(missing) in done.stderr
