"""NumPy backward passes (vanilla gradient, DeconvNet, guided backprop, DeSaliNet) from any unit."""
from app.net.autodiff.backward import Backward, backward, weight_gradient
from app.net.autodiff.modes import MODES

__all__ = ["Backward", "backward", "weight_gradient", "MODES"]
