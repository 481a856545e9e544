"""Model settings: where a model's files are and how to feed it (model_zoo/<name>/model.yaml)."""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from app.errors import DeepVisError
from app.net.preprocess import InputSpec

ZOO = Path(__file__).resolve().parents[2] / "model_zoo"
DEFAULT_MODEL = "efficientnet-lite0"

# Most ONNX files come from PyTorch: RGB in [0, 1] with torchvision's ImageNet normalisation.
TORCHVISION_INPUT = dict(channel_swap=[2, 1, 0], raw_scale=1.0, mean=[0.485, 0.456, 0.406],
                         input_scale=[1 / 0.229, 1 / 0.224, 1 / 0.225])


@dataclass
class ModelSpec:
    """Everything model.yaml says; ``source`` is resolved to absolute paths."""

    name: str
    folder: Path
    source: dict
    input: InputSpec
    labels: object = None          # "imagenet", a labels file path, or None
    prob_layer: object = None
    description: str = ""
    size_given: bool = False       # True when input.size came from the yaml, not a default
    random_weights_seed: Optional[int] = None   # a Caffe net's weights drawn from this seed (no caffemodel)


def zoo_names() -> list:
    return sorted(p.parent.name for p in ZOO.glob("*/model.yaml"))


def resolve(model=None, input_overrides=None, random_weights: Optional[int] = None) -> ModelSpec:
    """Turn what a user names (zoo name, .yaml, .onnx, .prototxt, (prototxt, caffemodel)) into a spec.

    random_weights: a seed; a Caffe model then gets seeded random weights instead of its caffemodel
    (a deploy prototxt alone is enough).
    """
    model = DEFAULT_MODEL if model is None else model
    if isinstance(model, (tuple, list)):
        prototxt, weights = (Path(p) for p in model)
        spec = _bare_spec(prototxt, {"caffe": {"prototxt": str(prototxt), "weights": str(weights)}},
                          caffe_input())
    else:
        path = Path(model)
        if path.suffix in (".yaml", ".yml"):
            spec = from_yaml(path, without_weights=random_weights is not None)
        elif path.suffix == ".onnx":
            sidecar = path.with_suffix(".yaml")
            spec = from_yaml(sidecar, onnx_file=path) if sidecar.is_file() else \
                _bare_spec(path, {"onnx": str(path)}, dict(TORCHVISION_INPUT))
        elif path.suffix == ".prototxt":
            weights = {} if random_weights is not None else {"weights": str(caffemodel_beside(path))}
            spec = _bare_spec(path, {"caffe": {"prototxt": str(path), **weights}}, caffe_input())
        elif (ZOO / str(model) / "model.yaml").is_file():
            spec = from_yaml(ZOO / str(model) / "model.yaml", without_weights=random_weights is not None)
        else:
            known = ", ".join(zoo_names())
            raise DeepVisError(f"{model}: not a model file (.onnx, .prototxt, .yaml) nor a model_zoo name ({known})")
    if random_weights is not None:
        _use_random_weights(spec, random_weights)
    if input_overrides:
        for key, value in input_overrides.items():
            setattr(spec.input, key, tuple(value) if key in ("size", "channel_swap") else value)
        spec.size_given = spec.size_given or "size" in input_overrides
    return spec


def _use_random_weights(spec: ModelSpec, seed: int) -> None:
    """Let a Caffe spec's weights come from ``seed`` instead of its caffemodel."""
    kind, value = next(iter(spec.source.items()))
    if kind != "caffe":
        raise DeepVisError(f"{spec.name}: random weights are made for Caffe prototxts only; this model is {kind}")
    spec.source = {"caffe": {"prototxt": value["prototxt"]}}
    spec.random_weights_seed = int(seed)


def caffemodel_beside(prototxt: Path) -> Path:
    """The weights of a prototxt: the .caffemodel of the same name, else the only one beside it."""
    same_name = prototxt.with_suffix(".caffemodel")
    if same_name.is_file():
        return same_name
    candidates = sorted(prototxt.parent.glob("*.caffemodel"))
    if len(candidates) == 1:
        return candidates[0]
    found = f"{len(candidates)} .caffemodel files" if candidates else "no .caffemodel file"
    raise DeepVisError(f"{prototxt}: {found} beside it; name the weights (a model.yaml, or "
                       "Net.load((prototxt, caffemodel))) or use seeded random ones: --random-weights SEED")


def caffe_input() -> dict:
    """Caffe's own defaults: BGR pixels 0-255, no mean unless the settings give one."""
    return dict(channel_swap=[0, 1, 2], raw_scale=255.0, mean=0.0, input_scale=1.0)


def _bare_spec(path: Path, source: dict, input_fields: dict) -> ModelSpec:
    return ModelSpec(name=path.stem, folder=path.parent, source=source, input=_input_spec(input_fields, path))


def from_yaml(path: Path, onnx_file=None, without_weights: bool = False) -> ModelSpec:
    """without_weights: a Caffe source's weights are neither looked for nor kept (random weights
    replace them: an entry whose weights are not downloaded still loads)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DeepVisError(f"{path}: cannot read model settings ({error.__class__.__name__}: {error})".splitlines()[0])
    if not isinstance(data, dict):
        raise DeepVisError(f"{path}: model settings must be a mapping")
    _check_types(data, path)
    source = dict(data.get("source") or {})
    if onnx_file is not None:
        source = {"onnx": str(onnx_file)}
    if len(source) != 1 or next(iter(source)) not in ("onnx", "caffe", "builtin"):
        raise DeepVisError(f"{path}: source must name exactly one of onnx, caffe, builtin")
    if without_weights and isinstance(source.get("caffe"), dict):
        source = {"caffe": {key: value for key, value in source["caffe"].items() if key != "weights"}}
    input_fields = dict(data.get("input") or {})
    labels = data.get("labels")
    if labels and labels != "imagenet":
        labels = _locate(path.parent, labels)
    return ModelSpec(name=data.get("name", path.parent.name), folder=path.parent,
                     source=_locate_source(path.parent, source), input=_input_spec(input_fields, path),
                     labels=labels, prob_layer=data.get("prob_layer"),
                     description=data.get("description", ""),
                     size_given="size" in input_fields)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value) -> bool:
    return _number(value) or (isinstance(value, list) and bool(value) and all(map(_number, value)))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# model.yaml's fields: what each must be, as a test and the words that say it
_FIELDS = {"name": (lambda v: isinstance(v, str), "a text"), "description": (lambda v: isinstance(v, str), "a text"),
           "labels": (lambda v: isinstance(v, str), "a file name or imagenet"),
           "prob_layer": (lambda v: isinstance(v, str), "a layer name"),
           "source": (lambda v: isinstance(v, dict), "a mapping (onnx: FILE, caffe: {prototxt, weights} or builtin: NAME)"),
           "input": (lambda v: isinstance(v, dict), "a mapping of input settings")}
_INPUT_FIELDS = {
    "size": (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_whole, v)), "[height, width]"),
    "channels": (_whole, "a positive whole number"),
    "channel_swap": (lambda v: isinstance(v, list) and all(isinstance(i, int) and 0 <= i < 3 for i in v),
                     "a list of channel indices 0..2"),
    "raw_scale": (_number, "a number"),
    "mean": (lambda v: _numbers(v) or isinstance(v, str), "a number, a list of numbers or a mean file"),
    "input_scale": (_numbers, "a number or a list of numbers"),
    "transpose": (lambda v: isinstance(v, bool), "true or false"),
}


def _check_types(data: dict, path: Path) -> None:
    """One line naming the first field of model.yaml whose value has the wrong type."""
    checks = [(key, data[key], _FIELDS[key]) for key in _FIELDS if data.get(key) is not None]
    fields = data.get("input") if isinstance(data.get("input"), dict) else {}
    checks += [(f"input: {key}", fields[key], _INPUT_FIELDS[key]) for key in _INPUT_FIELDS if key in fields]
    for name, value, (valid, what) in checks:
        if not valid(value):
            raise DeepVisError(f"{path}: {name}: {value!r} is not {what}")


def _locate(folder: Path, name) -> Path:
    """A file named in a model.yaml: absolute, beside the yaml, or in the user cache."""
    from app.paths import model_files_dir, user_path

    path = user_path(str(name))
    if path.is_absolute():
        return path
    beside = folder / path
    if beside.exists():
        return beside
    cached = model_files_dir(folder.name) / path
    if not cached.exists() and (folder / "fetch.py").is_file():
        raise DeepVisError(f"{folder.name}: {path} is not downloaded yet; run python {folder / 'fetch.py'} "
                           "(--no-weights: all but the weights, for --random-weights)")
    return cached if cached.exists() else beside


def _locate_source(folder: Path, source: dict) -> dict:
    kind, value = next(iter(source.items()))
    if kind == "onnx":
        return {"onnx": str(_locate(folder, value))}
    if kind == "caffe":
        return {"caffe": {k: str(_locate(folder, v)) for k, v in value.items()}}
    return source


def _input_spec(fields: dict, path: Path) -> InputSpec:
    spec = InputSpec()
    for key, value in fields.items():
        if not hasattr(spec, key):
            raise DeepVisError(f"{path}: input: unknown setting {key!r}")
        setattr(spec, key, tuple(value) if key in ("size", "channel_swap") else value)
    if isinstance(spec.mean, str):
        spec.mean = load_mean(_locate(path.parent, spec.mean))
    return spec


def load_mean(path: Path) -> np.ndarray:
    """A mean image from .npy (C x H x W) or Caffe .binaryproto."""
    path = Path(path)
    if path.suffix == ".binaryproto":
        from app.net.caffe import read_mean_binaryproto

        return read_mean_binaryproto(path)
    try:
        return np.load(path, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError) as error:
        raise DeepVisError(f"{path}: cannot read mean array ({error})".splitlines()[0])
