"""Guided backprop from the last conv layer to the pixels: our NumPy walk and graph against PyTorch autograd.

    python bench/bench_backward.py [--repeats 20] [--threads 2] [--nets caffenet,default]

CaffeNet (random weights, batch 1, built here with onnx.helper) and the default model. PyTorch runs
the same ONNX graph with the same weights (guided backprop by backward hooks on its ReLU modules,
the usual way); every side (the NumPy walk, the graph: one ONNX Runtime session, PyTorch) times only
the backward pass, after one forward, interleaved in rounds so that a busy machine slows them alike. PyTorch is needed only here: without it the script says so and
times our side alone.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.net import Net, heap  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

CAFFENET_INPUT = dict(size=[227, 227], channels=3, mean=[104.0, 117.0, 123.0], input_scale=1.0, raw_scale=255.0,
                      channel_swap=[0, 1, 2])


def caffenet_onnx(path: Path, seed: int = 0) -> Path:
    """BVLC CaffeNet (deploy) with random weights: 5 convs (groups 2 in conv2/4/5), LRN, ceil pooling, 3 fc."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], {}

    def conv(x, name, c_in, c_out, kernel, group=1, **attrs):
        weights[name + "_w"] = rng.normal(0, np.sqrt(2 / (c_in // group * kernel * kernel)),
                                          (c_out, c_in // group, kernel, kernel))
        weights[name + "_b"] = rng.normal(0, 0.1, c_out)
        nodes.append(helper.make_node("Conv", [x, name + "_w", name + "_b"], [name], name=name, group=group, **attrs))
        relu = "relu" + name[4:]
        nodes.append(helper.make_node("Relu", [name], [relu], name=relu))
        return relu

    def pool_norm(x, index, norm=True):
        nodes.append(helper.make_node("MaxPool", [x], [f"pool{index}"], kernel_shape=[3, 3], strides=[2, 2],
                                      ceil_mode=1))
        if not norm:
            return f"pool{index}"
        nodes.append(helper.make_node("LRN", [f"pool{index}"], [f"norm{index}"], size=5, alpha=1e-4, beta=0.75))
        return f"norm{index}"

    x = pool_norm(conv("data", "conv1", 3, 96, 11, strides=[4, 4]), 1)
    x = pool_norm(conv(x, "conv2", 96, 256, 5, group=2, pads=[2] * 4), 2)
    x = conv(x, "conv3", 256, 384, 3, pads=[1] * 4)
    x = conv(x, "conv4", 384, 384, 3, group=2, pads=[1] * 4)
    x = pool_norm(conv(x, "conv5", 384, 256, 3, group=2, pads=[1] * 4), 5, norm=False)
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    x = "flat"
    for name, c_in, c_out in (("fc6", 9216, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)):
        weights[name + "_w"] = rng.normal(0, np.sqrt(2 / c_in), (c_out, c_in))
        weights[name + "_b"] = rng.normal(0, 0.1, c_out)
        nodes.append(helper.make_node("Gemm", [x, name + "_w", name + "_b"], [name], transB=1))
        x = name
        if name != "fc8":
            x = "relu" + name[2:]
            nodes.append(helper.make_node("Relu", [name], [x]))
    nodes.append(helper.make_node("Softmax", [x], ["prob"]))
    graph = helper.make_graph(
        nodes, "caffenet", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 227, 227])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    return path


class TorchGuided:
    """The ONNX graph up to one tensor, run by PyTorch; ReLU-like modules carry guided-backprop hooks."""

    def __init__(self, net: Net, seed_layer: str):
        self.net, self.seed_layer = net, seed_layer
        self.weights = {k: torch.from_numpy(v.copy()) for k, v in net.initializers.items()}
        self.nodes = self._nodes_up_to(seed_layer)
        self.modules = {}
        for node in self.nodes:
            if node.op_type in ("Relu", "Clip"):
                module = torch.nn.ReLU() if node.op_type == "Relu" else torch.nn.ReLU6()
                module.register_full_backward_hook(lambda m, grad_in, grad_out: (grad_in[0].clamp(min=0),))
                self.modules[node.output[0]] = module

    def _nodes_up_to(self, name: str) -> list:
        """The nodes the tensor depends on, in graph order."""
        needed = {name}
        for node in reversed(self.net.model.graph.node):
            if any(o in needed for o in node.output):
                needed.update(node.input)
        return [n for n in self.net.model.graph.node if any(o in needed for o in n.output)]

    def forward(self, image: "torch.Tensor") -> "torch.Tensor":
        values = {self.net.input_name: image}
        for node in self.nodes:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            args = [values.get(i, self.weights.get(i)) for i in node.input]
            values[node.output[0]] = self._run(node, attrs, args)
        return values[self.seed_layer]

    def _run(self, node, attrs, args):
        if node.op_type == "Conv":
            pads = attrs.get("pads", [0, 0, 0, 0])
            x = args[0]
            if pads[:2] != pads[2:]:
                x, pads = F.pad(x, (pads[1], pads[3], pads[0], pads[2])), [0, 0, 0, 0]
            return F.conv2d(x, args[1], args[2] if len(args) > 2 else None, attrs.get("strides", [1, 1]),
                            pads[:2], attrs.get("dilations", [1, 1]), attrs.get("group", 1))
        if node.op_type in ("Relu", "Clip"):
            return self.modules[node.output[0]](args[0])
        if node.op_type == "MaxPool":
            return F.max_pool2d(args[0], attrs["kernel_shape"], attrs.get("strides"), attrs.get("pads", [0] * 4)[:2],
                                ceil_mode=bool(attrs.get("ceil_mode", 0)))
        if node.op_type == "LRN":
            return F.local_response_norm(args[0], attrs["size"], attrs.get("alpha", 1e-4), attrs.get("beta", 0.75),
                                         attrs.get("bias", 1.0))
        if node.op_type == "Add":
            return args[0] + args[1]
        raise NotImplementedError(f"benchmark's torch graph has no {node.op_type}")


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench(name: str, net: Net, repeats: int) -> None:
    seed_layer = [layer for layer in net.layers if layer.op_type == "Conv"][-1].name
    image = np.random.default_rng(1).integers(0, 256, net.input_shape[1:] + (3,), dtype=np.uint8)
    batch = net.preprocess([image])
    run = net.forward(batch)
    acts = run[seed_layer]
    unit = int(acts[0].reshape(acts.shape[1], -1).sum(axis=1).argmax())
    ours = lambda: run.backward(seed_layer, unit, mode="guided", engine="numpy").input  # noqa: E731
    graph = lambda: run.backward(seed_layer, unit, mode="guided", engine="graph").input  # noqa: E731
    ours()
    graph_difference = np.abs(graph() - ours()).max() / np.abs(ours()).max()
    times = {"numpy": [], "graph": []}
    if torch is not None:
        model = TorchGuided(net, seed_layer)
        x = torch.from_numpy(batch.copy()).requires_grad_(True)
        out = model.forward(x)
        seed = torch.zeros_like(out)
        seed[:, unit] = out[:, unit].detach()
        theirs = lambda: torch.autograd.grad(out, x, seed, retain_graph=True)[0]  # noqa: E731
        difference = np.abs(theirs().numpy() - ours()).max() / np.abs(ours()).max()
        times["torch"] = []
    for _ in range(repeats):  # interleaved: a busy machine slows every side alike
        times["numpy"].append(seconds(ours))
        times["graph"].append(seconds(graph))
        if torch is not None:
            times["torch"].append(seconds(theirs))
    ms = {side: 1000 * float(np.median(t)) for side, t in times.items()}
    line = (f"{name:<22} from {seed_layer} unit {unit}: numpy {ms['numpy']:7.1f} ms | graph {ms['graph']:7.1f} ms"
            f" ({graph_difference:.1e} of max from numpy) | ratio graph/numpy {ms['graph'] / ms['numpy']:.2f}")
    if torch is not None:
        line += (f" | torch {ms['torch']:7.1f} ms | ratios numpy/torch {ms['numpy'] / ms['torch']:.2f}, graph/torch "
                 f"{ms['graph'] / ms['torch']:.2f} | max difference {difference:.1e} of max")
    print(line)


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads (NumPy's BLAS uses its own)")
    parser.add_argument("--nets", default="caffenet,default")
    args = parser.parse_args()
    if torch is None:
        print("PyTorch is not installed: timing the NumPy side only (pip install torch to compare)")
    else:
        torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.nets.split(","):
            if name == "caffenet":
                path = caffenet_onnx(Path(folder) / "caffenet.onnx")
                bench("CaffeNet (random)", Net.load(path, provider="cpu", input=CAFFENET_INPUT), args.repeats)
            else:
                bench("default model", Net.load(None, provider="cpu"), args.repeats)


if __name__ == "__main__":
    main()
