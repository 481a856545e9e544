"""Caffe import speed: conversion time, and ONNX Runtime's forward of the converted CaffeNet vs
OpenCV's own Caffe forward on the same input and random weights, in one run.

    python bench/bench_caffe.py [--repeats 10]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.net import heap  # noqa: E402
from app.net.caffe import convert  # noqa: E402
from app.net.caffe.convert import convert_random  # noqa: E402
from app.net.sessions import session_options  # noqa: E402
from app.net.onnx_graph import runnable  # noqa: E402
from bench.bench_forward import seconds_per_run  # noqa: E402

PROTOTXT = ROOT.parent / "shared" / "testdata" / "caffenet_deploy" / "deploy.prototxt"


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prototxt", type=Path, default=PROTOTXT)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        caffemodel = Path(folder) / "random.caffemodel"
        convert_random(args.prototxt, 0, caffemodel)
        weight_bytes = caffemodel.stat().st_size
        start = time.perf_counter()
        model = convert(args.prototxt, caffemodel)
        converted = time.perf_counter() - start
        reference = cv2.dnn.readNetFromCaffe(str(args.prototxt), str(caffemodel))
    reference.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    session = ort.InferenceSession(runnable(model).SerializeToString(), session_options(),  # as the toolbox runs
                                   providers=["CPUExecutionProvider"])
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(1).uniform(-1, 1, [1] + shape).astype(np.float32)
    name = model.graph.input[0].name

    def opencv_forward():
        reference.setInput(x)
        return reference.forward()

    ours = seconds_per_run(lambda: session.run(None, {name: x}), args.repeats)
    theirs = seconds_per_run(opencv_forward, args.repeats)
    print(f"{args.prototxt.name}: conversion {converted:.2f} s (weights {weight_bytes / 1e6:.0f} MB)")
    ours_ms, theirs_ms = ours * 1000, theirs * 1000   # (median, fastest, slowest)
    print(f"forward, batch 1: ONNX Runtime {ours_ms[0]:.1f} ms (runs {ours_ms[1]:.1f}-{ours_ms[2]:.1f}) | "
          f"OpenCV {theirs_ms[0]:.1f} ms (runs {theirs_ms[1]:.1f}-{theirs_ms[2]:.1f}) | "
          f"ratio of medians {ours[0] / theirs[0]:.2f}x")


if __name__ == "__main__":
    main()
