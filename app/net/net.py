"""Net: load a model, list its layers, run it forward (each run a value: app/net/run.py), predict."""
import re
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Optional

import numpy as np
import onnx
import onnxruntime as ort

from app.errors import DeepVisError
from app.net import onnx_graph, ops, preprocess, providers, spec as model_spec
from app.net.run import Run
from app.net.sessions import session_options

NO_CLASS_OUTPUT = "no class output: set prob_layer in the model's yaml"
MAX_INPUT_SIDE = 16384   # an input dim over this is a damaged or hostile file, never a CNN's image
# backward graphs kept per net, least recently used dropped (one per layer, mode and options); they
# read the net's weights (a session with its own copy held 440 MB of CaffeNet's, packed copies included)
GRAPH_SESSIONS = 8
# forward sessions kept per net for forward(outputs=...), one per set of outputs asked for, least
# recently used dropped (settings.forward_sessions; each holds its own packed copy of the weights)
FORWARD_SESSIONS = 4


class Net:
    """A trained CNN run by ONNX Runtime, every intermediate tensor returned by one run; it holds
    nothing of any run, so threads may share it.

    ``Net.load()`` gives the default model; see ``Net.load`` for what else it takes.
    """

    def __init__(self, model, spec: model_spec.ModelSpec, provider: str = "auto", path=None):
        self.model = model
        self.spec = spec
        self.path = Path(path) if path else None
        self.initializers = _initializers(model, self.where)
        # the weights once, in the net's memory: every session reads them from here (ORT keeps no
        # copy of its own), and the model the sessions are made from holds none (``skeleton``)
        self._ort_weights = {name: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value))
                             for name, value in self.initializers.items()
                             if value.size > onnx_graph.SMALL_CONSTANT and value.dtype.kind in "biuf"}
        self.skeleton = onnx_graph.weights_outside(model, self._ort_weights)
        self.input_name = onnx_graph.graph_input(model).name
        self._fit_input_spec()
        self._session = self._make_session(onnx_graph.with_all_outputs(onnx_graph.runnable(self.skeleton)), provider,
                                           path, shared=self._ort_weights)
        self.provider = self._session.get_providers()[0]
        # why not CUDA, when a GPU is present: what the status line and the tools say
        self.provider_note = providers.cuda_fallback(providers.choose_providers(provider), self.provider)
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._lock = threading.Lock()   # guards the cached plans below: built once, then read by any thread
        self._partial = None   # (layer, session, output names) of the last forward(up_to=layer)
        self._forward_sessions = OrderedDict()   # frozenset of outputs -> (session, output names)
        self._preparing = None   # the outputs whose session a background thread is making
        self.forward_sessions = FORWARD_SESSIONS
        self._graph_plan = None
        self._graph_lock = threading.Lock()   # guards the backward graphs' sessions
        self._graph_sessions = OrderedDict()
        self.backward_engine = "graph"   # what run.backward uses unless told: "graph" or "numpy"
        try:
            tensors = self._run(np.zeros((1,) + self.input_shape, np.float32), options=_QUIET)
        except Exception as error:  # ORT's untyped RuntimeException: a model that loads but cannot run
            raise DeepVisError(f"{self.where}: ONNX Runtime cannot run it on a blank image: "
                               f"{_ort_reason(error)}") from None
        # every tensor's (dtype, rank), which later runs (up_to a layer, say) may not all hold
        self.tensor_types = {name: (value.dtype, value.ndim) for name, value in tensors.items()}
        self.output_shapes = {o.name: tensors[o.name].shape[1:] for o in model.graph.output}   # per image
        # tensors no input changes, e.g. weights that Constant nodes make: what the weights views read
        constant = ops.constant_tensors(model.graph)
        self.constants = MappingProxyType({name: value for name, value in tensors.items() if name in constant})
        self.layers = onnx_graph.find_layers(model, tensors)
        self._by_name = {layer.name: layer for layer in self.layers}
        self._labels = None

    @classmethod
    def load(cls, model=None, provider: str = "auto", input: dict = None, random_weights: int = None) -> "Net":
        """Load a model.

        model: None (the default model), a model_zoo name, a model.yaml, an .onnx file (a .yaml of the
        same name beside it supplies its settings), a Caffe .prototxt (weights: the .caffemodel beside
        it) or a (prototxt, caffemodel) pair. provider: "auto", "cuda" or "cpu". input: overrides of the
        model's input settings (size, mean, channel_swap, raw_scale, input_scale, channels, transpose).
        random_weights: a seed; a Caffe model gets seeded random weights instead of its caffemodel
        (kept in the cached ONNX file only; ``spec.random_weights_seed`` says so).
        """
        spec = model_spec.resolve(model, input, random_weights)
        kind, value = next(iter(spec.source.items()))
        if kind == "onnx":
            path = Path(value)
        elif kind == "caffe":
            from app.net.caffe import convert_cached

            weights = Path(value["weights"]) if "weights" in value else None
            path = convert_cached(Path(value["prototxt"]), weights, random_seed=spec.random_weights_seed)
        else:
            from app.models import build

            path = build(value)
        return cls(onnx_graph.load_model(path), spec, provider, path)

    # -- layers and shapes ------------------------------------------------------------------
    def layer(self, name: str) -> onnx_graph.Layer:
        try:
            return self._by_name[name]
        except KeyError:
            raise DeepVisError(f"{self.spec.name}: no layer named {name!r}") from None

    @property
    def where(self) -> str:
        """The model's file, or its name: what error messages start with."""
        return str(self.path) if self.path else self.spec.name

    @property
    def input_shape(self) -> tuple:
        """(C, H, W) of one preprocessed image."""
        return (self.spec.input.channels,) + tuple(self.spec.input.size)

    def _fit_input_spec(self) -> None:
        """The model file's own fixed input dims win over the settings."""
        dims = onnx_graph.static_dims(onnx_graph.graph_input(self.model))
        if len(dims) != 4:
            raise DeepVisError(f"{self.where}: input {self.input_name} has rank {len(dims)}; "
                               "an image input N x C x H x W is needed")
        channels, height, width = dims[1:]
        if max(channels or 0, height or 0, width or 0) > MAX_INPUT_SIDE:
            raise DeepVisError(f"{self.where}: input {self.input_name} has shape {dims}: over "
                               f"{MAX_INPUT_SIDE} in one dim, not an image input")
        if channels:
            self.spec.input.channels = channels
        size = list(self.spec.input.size)
        self.spec.input.size = (height or size[0], width or size[1])
        for key in ("mean", "input_scale"):
            setattr(self.spec.input, key, self._per_channel_setting(key))

    def _per_channel_setting(self, key: str):
        """A per-channel mean or scale fitted to the net's channels (a gray net averages RGB values)."""
        value, channels = getattr(self.spec.input, key), self.spec.input.channels
        array = np.asarray(value, dtype=np.float32)
        if array.ndim != 1 or len(array) == channels:
            return value
        if channels == 1:
            return [float(array.mean())]
        raise DeepVisError(f"{self.spec.name}: input {key} has {len(array)} values, the net takes "
                           f"{channels} channels")

    # -- running ----------------------------------------------------------------------------
    @staticmethod
    def _make_session(model, preference: str, path, order: ort.ExecutionOrder = ort.ExecutionOrder.DEFAULT,
                      shared: dict = None, prepack: bool = True) -> ort.InferenceSession:
        """shared: initializers (name -> OrtValue) the session reads from the caller's memory instead
        of a copy of its own; the caller keeps them alive as long as the session. prepack: let ONNX
        Runtime pack weights for its products (a copy per session; the forward's own numbers)."""
        requested = providers.choose_providers(preference)
        if providers.CUDA in requested:
            providers.preload_cuda()
        options = session_options(order=order)
        held = {weight.name: onnx_graph.held_outside(weight) for weight in model.graph.initializer}
        shared = {name: value for name, value in (shared or {}).items() if name in held}
        outside = [name for name in shared if held[name]]
        if outside:
            options.add_external_initializers(outside, [shared[name] for name in outside])
        for name in shared:
            if not held[name]:   # the model holds a copy: the session reads the net's instead
                options.add_initializer(name, shared[name])
        if not prepack:   # packed copies of the weights would be the session's own again
            options.add_session_config_entry("session.disable_prepacking", "1")
        try:
            return ort.InferenceSession(model.SerializeToString(), options, providers=requested)
        except Exception as error:  # ORT raises its own untyped Fail / InvalidGraph errors
            raise DeepVisError(f"{path or 'model'}: ONNX Runtime cannot run it: {_ort_reason(error)}") from None

    def make_session(self, model, order=ort.ExecutionOrder.DEFAULT, prepack: bool = True) -> ort.InferenceSession:
        """A session for a variant of this net's model (other outputs, say; best made from
        ``skeleton``) on the same provider, reading the net's weights."""
        preference = "cuda" if self.provider == providers.CUDA else "cpu"
        return self._make_session(model, preference, self.path, order, shared=self._ort_weights, prepack=prepack)

    def preprocess(self, images) -> np.ndarray:
        """Images (list of H x W x 3 uint8 BGR) -> N x C x H x W float32 input."""
        return preprocess.preprocess(images, self.spec.input)

    def deprocess(self, batch: np.ndarray) -> list:
        """N x C x H x W input -> list of H x W x 3 uint8 BGR images."""
        return preprocess.deprocess(batch, self.spec.input)

    def _as_batch(self, images) -> np.ndarray:
        if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.float32:
            if images.shape[1:] != self.input_shape:
                raise DeepVisError(f"{self.spec.name}: input batch has shape {images.shape[1:]} per "
                                   f"image, the net takes {self.input_shape}")
            return images
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            images = [images]
        return self.preprocess(list(images))

    def _run(self, batch: np.ndarray, up_to: str = None, options: ort.RunOptions = None, outputs=None) -> dict:
        if outputs is not None:
            session, names = self._session_for(outputs)
        elif up_to is not None:
            session, names = self._session_up_to(up_to)
        else:
            session, names = self._session, self._output_names
        tensors = dict(zip(names, session.run(None, {self.input_name: batch}, options)))
        tensors[self.input_name] = batch
        return tensors

    def forward(self, images, up_to: str = None, outputs=None) -> Run:
        """The forward run of a batch: a Run, mapping layer name -> activation with the batch axis,
        holding every intermediate tensor of the graph (what its backward passes read).

        images: a list of H x W x 3 uint8 BGR images (any size; preprocessing applied) or an
        N x C x H x W float32 array (copied: the run keeps the batch it saw). up_to: a layer name;
        only what that layer depends on is computed and kept (enough to backprop from it).
        outputs: tensor names; only these are returned (ONNX Runtime then fuses the rest, e.g. a
        convolution with its activation), by a session made for this set and kept
        (``forward_sessions`` sets, least recently used dropped). Reading another tensor of the
        graph from the run raises run.MissingTensor.
        """
        batch = self._as_batch(images)
        if batch is images:
            batch = batch.copy()
        asked = None if outputs is None else self._asked(outputs)
        return Run(self, batch, self._run(batch, up_to, outputs=asked), partial=up_to is not None or asked is not None)

    def _asked(self, outputs) -> frozenset:
        return frozenset(outputs) - {self.input_name}

    def prepare_forward(self, outputs) -> bool:
        """True when forward(outputs=) has its session; else starts making it on a background thread
        (one at a time) and says False: the live loop runs every tensor meanwhile, since making a
        session takes up to a few forwards (ResNet-50: 0.5 s)."""
        asked = self._asked(outputs)
        with self._lock:
            if asked in self._forward_sessions:
                return True
            if self._preparing is not None:
                return False
            self._preparing = asked
        threading.Thread(target=self._prepare, args=(asked,), daemon=True).start()
        return False

    def _prepare(self, outputs: frozenset) -> None:
        try:
            self._session_for(outputs)
        except DeepVisError:   # never ready: the caller goes on with every tensor, which does run
            pass
        finally:
            with self._lock:
                self._preparing = None

    def _session_for(self, outputs: frozenset) -> tuple:
        """(session, output names) computing only what ``outputs`` depend on and returning only them;
        made outside the lock (the forward of every tensor and other sets go on meanwhile)."""
        unknown = sorted(outputs - set(self.tensor_types))
        if unknown:
            raise DeepVisError(f"{self.where}: no tensor named {unknown[0]!r} to compute")
        with self._lock:
            entry = self._forward_sessions.get(outputs)
            if entry is not None:
                self._forward_sessions.move_to_end(outputs)
                return entry
        session = self.make_session(_with_outputs(onnx_graph.runnable(self.skeleton), outputs, self.tensor_types))
        with self._lock:
            entry = self._forward_sessions.setdefault(outputs, (session, [o.name for o in session.get_outputs()]))
            self._forward_sessions.move_to_end(outputs)
            while len(self._forward_sessions) > max(1, self.forward_sessions):
                self._forward_sessions.popitem(last=False)
            return entry

    def _session_up_to(self, layer: str) -> tuple:
        """(session, output names) computing only what ``layer`` depends on, kept for the next call
        (activation maximization runs thousands of steps on one layer)."""
        self.layer(layer)
        partial = self._partial
        if partial is None or partial[0] != layer:
            with self._lock:
                partial = self._partial
                if partial is None or partial[0] != layer:
                    # pruned first: shape inference then reads only the kept nodes
                    needed = onnx_graph.needed_for(onnx_graph.runnable(self.skeleton), layer)
                    session = self.make_session(onnx_graph.with_all_outputs(needed))
                    partial = self._partial = (layer, session, [o.name for o in session.get_outputs()])
        return partial[1:]

    def graph_plan(self):
        """The model's nodes indexed for backward passes (app/net/autodiff), made on first use."""
        if self._graph_plan is None:
            with self._lock:
                if self._graph_plan is None:
                    from app.net.autodiff.graph import GraphPlan

                    dtypes = {**{name: dtype for name, (dtype, _) in self.tensor_types.items()},
                              **{name: value.dtype for name, value in self.initializers.items()}}
                    self._graph_plan = GraphPlan(self.model, dtypes, self.where)
        return self._graph_plan

    def graph_session(self, key, make_graph):
        """(session, graph) for ``make_graph()`` (an autodiff BackwardGraph), made once per key and
        kept, least recently used dropped; or the one line saying why it cannot be made (also kept)."""
        with self._graph_lock:
            entry = self._graph_sessions.get(key)
            if entry is None:
                try:
                    graph = make_graph()
                    # the session keeps what it needs: the model (weights included) is dropped;
                    # packing would copy the weights of every backward graph (VGG16: 550 MB each)
                    entry = (self.make_session(graph.model, prepack=False), replace(graph, model=None))
                except DeepVisError as error:
                    entry = str(error)
                self._graph_sessions[key] = entry
                while len(self._graph_sessions) > GRAPH_SESSIONS:
                    self._graph_sessions.popitem(last=False)
            self._graph_sessions.move_to_end(key)
            return entry

    # -- classification ---------------------------------------------------------------------
    @property
    def labels(self):
        """Class names, or None when the model has none."""
        if self._labels is None and self.spec.labels:
            from app import labels

            self._labels = (labels.imagenet_labels() if self.spec.labels == "imagenet"
                            else labels.read_labels_file(self.spec.labels))
        return self._labels

    def prob_layer(self) -> Optional[str]:
        """The class output: the yaml's prob_layer, else the output with one value per label, else
        (no labels) the net's only output when it is a vector; None when there is none (a detector's
        box and score maps are no classes)."""
        if self.spec.prob_layer:
            return self.spec.prob_layer
        sizes = {name: int(np.prod(shape)) for name, shape in self.output_shapes.items()}
        if self.labels:
            return next((name for name, size in sizes.items() if size == len(self.labels)), None)
        if len(sizes) == 1:
            (name, shape), = self.output_shapes.items()
            return name if sum(d > 1 for d in shape) == 1 else None
        return None

    def logits_layer(self) -> Optional[str]:
        """The layer whose units are the classes before the softmax (what backprop from a class
        starts at: through a saturated softmax the gradient nearly vanishes); the class output
        itself when no Softmax makes it, None when there is no class output."""
        prob = self.prob_layer()
        node = next((n for n in self.model.graph.node if prob in n.output), None)
        if node is not None and node.op_type in ("Softmax", "LogSoftmax") and node.input[0] in self._by_name:
            return node.input[0]
        return prob

    def predict(self, images, top: int = 5) -> list:
        """Per image, the ``top`` (label, probability) pairs, best first."""
        if self.prob_layer() is None:
            raise DeepVisError(f"{self.spec.name}: {NO_CLASS_OUTPUT}")
        run = self.forward(images)
        return [list(run.top_classes(top, sample)) for sample in range(len(run.input))]


_QUIET = ort.RunOptions()
_QUIET.log_severity_level = 4   # a failing node is reported in our one line, not in ORT's log


def _ort_reason(error) -> str:
    """ORT's message cut to what a user can act on: the node and the check that failed."""
    text = str(error).splitlines()[0]
    node = re.search(r"running (\w+) node\. Name:'([^']*)'", text)
    detail = text.rsplit(" was false. ", 1)[-1] if " was false. " in text else text.split(" : ")[-1]
    detail = re.sub(r"^/\S+:\d+ [^(]*\(.*?\) (?=[A-Z])", "", detail)   # the C++ source line and function
    return ((f"node {node.group(2)} ({node.group(1)}): " if node else "") + detail)[:300]


def _with_outputs(model, outputs: frozenset, tensor_types: dict):
    """A copy of the model with only the nodes ``outputs`` depend on, returning exactly those."""
    needed = onnx_graph.ancestors(model.graph, sorted(outputs))
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    nodes = [node for node in copy.graph.node if needed.intersection(node.output)]
    read = {name for node in nodes for name in node.input}
    weights = [weight for weight in copy.graph.initializer if weight.name in read]  # ORT refuses orphans
    del copy.graph.node[:], copy.graph.output[:], copy.graph.initializer[:]
    copy.graph.node.extend(nodes)
    copy.graph.initializer.extend(weights)
    helper = onnx.helper
    copy.graph.output.extend(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(tensor_types[name][0]),
                                                           None) for name in sorted(outputs))
    return copy


def _initializers(model, where: str) -> dict:
    """The model's weights as arrays; a damaged one (typed data of the wrong length) in one line."""
    try:
        return {t.name: onnx_graph.onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    except (ValueError, TypeError) as error:
        raise DeepVisError(f"{where}: a damaged initializer ({str(error).splitlines()[0][:200]})") from None

