"""The 3-D view of the selected layer (key 3) and its export as a volume file (key 4).

The projection is ray-cast (tens of milliseconds), so the window renders it on a worker thread;
the aux pane only shows the newest picture.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import DeepVisError

START_ANGLE = 35.0   # degrees


@dataclass(frozen=True, eq=False)
class VolumeJob:
    """One picture to render: the activation (compared by identity), the angle and the picture size."""

    activation: np.ndarray
    angle: float
    elevation: float
    size: int
    render_size: int


def as_volume(activation: np.ndarray) -> np.ndarray:
    """A C x H x W volume of any activation (vectors as C x 1 x 1, other ranks flattened per channel)."""
    activation = np.asarray(activation, np.float32)
    if activation.ndim == 3:
        return activation
    return activation.reshape(len(activation), -1, 1) if activation.ndim else activation.reshape(1, 1, 1)


def render(job: VolumeJob) -> np.ndarray:
    """The maximum-intensity projection of ``job`` as a size x size BGR picture."""
    from app.views.volume import mip_image

    return mip_image(as_volume(job.activation), job.angle, job.elevation, size=job.size,
                     render_size=job.render_size)


def job_for(activation: np.ndarray, settings, seconds: float, size: int) -> VolumeJob:
    """The picture to show ``seconds`` after start: turned by volume_degrees_per_second, from
    START_ANGLE (at angle 0 the channel axis points at the viewer and the volume looks flat)."""
    angle = (START_ANGLE + seconds * settings.volume_degrees_per_second) % 360.0
    return VolumeJob(activation, angle, settings.volume_elevation, size, settings.volume_render_size)


def folder_name(layer: str) -> str:
    """A layer name as one safe file name ("/features.0/Conv_output_0" -> "features.0_Conv_output_0")."""
    return re.sub(r"[^\w.-]+", "_", layer).strip("_") or "layer"


def export(activation, layer: str, settings) -> str:
    """Write ``layer``'s activation to volume_dir as .nrrd and .npy; the status line's message."""
    from app.views.volume import export_volume

    if activation is None:
        return "volume: no activation yet"
    try:
        paths = export_volume(activation, Path(settings.volume_dir) / folder_name(layer), layer=layer)
    except (OSError, DeepVisError) as error:
        return f"volume: {error}"
    return "volume written: " + ", ".join(str(path) for path in paths)
