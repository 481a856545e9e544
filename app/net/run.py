"""Run: one forward run of a Net as a value: the batch it saw, every tensor it computed (read-only),
and the backward passes and weight gradients from them.

A run owns its arrays: drop it before the next forward of a large batch, so that ONNX Runtime reuses
their memory instead of growing by another batch's worth.
"""
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np

from app.labels import class_name
from app.net.sessions import session_options


class MissingTensor(LookupError):
    """A tensor of the graph that the run was not asked to compute (Net.forward's outputs) was read.
    Not a KeyError: a ChainMap of the tensors and the weights would take it for 'look further'."""


class Tensors(Mapping):
    """Read-only name -> tensor of one run; a tensor of the graph the run did not compute raises
    MissingTensor (never a silent None). ``reading()`` records the names read, for the caller to
    ask for them alone next time."""

    def __init__(self, values: dict, known=(), where: str = ""):
        self._values, self._known, self._where = values, known, where
        self._read = None

    def __getitem__(self, name: str):
        value = self._values.get(name)
        if value is None:
            if name in self._known:
                raise MissingTensor(f"{self._where}: tensor {name!r} was not computed by this run "
                                    "(not among the forward's outputs)")
            raise KeyError(name)
        if self._read is not None:
            self._read.add(name)
        return value

    def __contains__(self, name) -> bool:
        return name in self._values or name in self._known

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def computed(self, name: str) -> bool:
        return name in self._values

    @contextmanager
    def reading(self):
        """Records the names read inside the block into the set it gives."""
        self._read = read = set()
        try:
            yield read
        finally:
            self._read = None

    def unrecorded(self, make):
        """``make()`` with its reads left out of the record (a backward graph made once reads every
        tensor on its path; its passes read only what they are fed)."""
        read, self._read = self._read, None
        try:
            return make()
        finally:
            self._read = read


def _read_only(value):
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    return value


class Run(Mapping):
    """Mapping layer name -> activation (with the batch axis) of one forward run of ``net``.

    input: the N x C x H x W batch the net saw. tensors: every tensor of the graph from this run
    (or those the forward was asked for), the input included (what the backward passes read).
    Both are read-only.
    """

    def __init__(self, net, batch: np.ndarray, tensors: dict, partial: bool = False):
        self.net = net
        self.partial = partial   # computed only some tensors of the graph (Net.forward's up_to, outputs)
        self.input = _read_only(batch)
        tensors = {name: _read_only(value) for name, value in tensors.items()}
        tensors[net.input_name] = self.input
        self.tensors = Tensors(tensors, net.tensor_types, net.where) if partial else Tensors(tensors)
        self.layer_names = tuple(layer.name for layer in net.layers if layer.name in tensors)
        self._layer_set = frozenset(self.layer_names)

    def __getitem__(self, layer: str) -> np.ndarray:
        if layer not in self._layer_set:
            raise KeyError(layer)
        return self.tensors[layer]

    def __iter__(self):
        return iter(self.layer_names)

    def __len__(self) -> int:
        return len(self.layer_names)

    # -- what the backward passes read (app/net/autodiff) ---------------------------------------
    @property
    def model(self):
        return self.net.model

    @property
    def initializers(self) -> dict:
        return self.net.initializers

    @property
    def input_name(self) -> str:
        return self.net.input_name

    @property
    def where(self) -> str:
        return self.net.where

    @staticmethod
    def helper_session_options():
        """Options of the backward rules' own sessions (the depthwise correlations): the net's, on one
        thread like the rest of the walk."""
        return session_options(threads=1)

    @property
    def plan(self):
        """The net's graph plan of backward paths (built once per net)."""
        return self.net.graph_plan()

    def graph_session(self, key, make_graph):
        """(session, graph) of a backward graph, made once per net and key; or the one line saying why
        it cannot be made (the pass then walks in NumPy)."""
        return self.net.graph_session(key, lambda: self.tensors.unrecorded(make_graph))

    def backward(self, layer: str, unit, mode: str = "grad", seed="activation", at=None, layer_diffs: bool = False,
                 seed_through_rectifier: bool = False, engine: str = None, **options):
        """Backprop from ``unit`` of ``layer`` to the input -> Backward(input=, layers=, fallback=) (see
        app/net/autodiff/backward.py for the modes, seeds and options). engine: "graph" (one ONNX
        Runtime session per layer and mode) or "numpy"; None: the net's ``backward_engine``."""
        from app.net.autodiff import backward

        return backward(self, layer, unit, mode=mode, seed=seed, at=at, layer_diffs=layer_diffs,
                        seed_through_rectifier=seed_through_rectifier, engine=engine or self.net.backward_engine,
                        **options)

    def weight_gradient(self, layer: str, unit, param_layer: str, seed="activation", at=None) -> np.ndarray:
        """Gradient of ``unit`` of ``layer`` with respect to the weights of ``param_layer``, summed
        over the batch."""
        from app.net.autodiff import weight_gradient

        return weight_gradient(self, layer, unit, param_layer, seed=seed, at=at)

    # -- classification ---------------------------------------------------------------------------
    def top_classes(self, top: int = 5, sample: int = 0) -> tuple:
        """The ``top`` (class name, probability) pairs of image ``sample``, best first (softmax
        applied when the outputs are logits); none when the net has no class output or its scores
        are not finite."""
        layer = self.net.prob_layer()
        if layer is None or not self.tensors.computed(layer):
            return ()
        scores = np.asarray(self.tensors[layer], np.float64)
        if scores.ndim > 1:   # the first axis is the batch
            scores = scores.reshape(len(scores), -1)[sample]
        if scores.size == 0 or not np.all(np.isfinite(scores)):
            return ()
        if np.any(scores < 0) or not np.isclose(scores.sum(), 1.0, atol=1e-3):
            scores = np.exp(scores - scores.max())
            scores /= scores.sum()
        best = np.argsort(-scores, kind="stable")[:top]
        return tuple((class_name(self.net.labels, i), float(scores[i])) for i in best)
