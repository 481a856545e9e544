"""The model runtime: load a model, run it, read every layer, backprop from any unit."""
from app.net.net import Net
from app.net.onnx_graph import Layer

__all__ = ["Net", "Layer"]
