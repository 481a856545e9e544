"""Adam (Kingma and Ba 2015) and NAdam (Dozat 2016) for gradient ascent on a batch of parameters.

Every element has its own moments, so an image's steps never depend on the other images of its batch.
"""
import numpy as np


class Adam:
    """Ascends: ``step(params, grad)`` returns params moved up the gradient."""

    def __init__(self, lr: float, nesterov: bool = False, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8):
        self.lr, self.nesterov, self.beta1, self.beta2, self.epsilon = lr, nesterov, beta1, beta2, epsilon
        self.moment = self.second = None
        self.count = 0

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.moment is None:
            self.moment, self.second = np.zeros_like(grad), np.zeros_like(grad)
        self.count += 1
        self.moment = self.beta1 * self.moment + (1 - self.beta1) * grad
        self.second = self.beta2 * self.second + (1 - self.beta2) * grad * grad
        moment = self.moment / (1 - self.beta1 ** self.count)
        if self.nesterov:   # NAdam: look one step ahead along the momentum
            moment = self.beta1 * moment + (1 - self.beta1) * grad / (1 - self.beta1 ** self.count)
        second = self.second / (1 - self.beta2 ** self.count)
        return (params + self.lr * moment / (np.sqrt(second) + self.epsilon)).astype(params.dtype)
