"""Turning run_toolbox.py's --input text (or the ``input`` setting) into an input source."""
import re
from typing import Optional

from app.errors import DeepVisError
from app.inputs.camera import CameraSource
from app.inputs.files import DirectorySource, ImageFileSource
from app.inputs.lists import ImageListSource, SiameseListSource, is_siamese_list
from app.inputs.samples import default_input_dir
from app.inputs.source import InputSource
from app.inputs.video import VIDEO_EXTENSIONS, VideoSource
from app.paths import user_path

LIST_EXTENSIONS = {".txt", ".lst", ".list"}


def open_source(text: Optional[str] = None, settings=None) -> InputSource:
    """The source ``text`` names: a folder, an image list (.txt, .lst or .list; two paths a line
    make it a siamese list), a video file (by extension), an image file, ``camera`` or ``camera:N``.

    ``text`` None falls back to ``settings.input``, and None there to the sample photos.
    ``settings`` (a namespace from app.settings.load_settings, or None for the defaults) gives
    the camera index, mirroring, contrast stretch and fps, and the directory regex filter.
    Raises DeepVisError when the text names nothing usable.
    """
    def setting(name, default):
        return getattr(settings, name, default) if settings is not None else default

    text = setting("input", None) if text is None else text
    if text is None or not str(text).strip():
        return DirectorySource(default_input_dir())
    text = str(text).strip()
    camera = re.fullmatch(r"camera(?::(\d+))?", text, re.IGNORECASE)
    if camera:
        index = int(camera.group(1)) if camera.group(1) else setting("input_camera_index", 0)
        return CameraSource(index, mirror=setting("input_camera_mirror", True),
                            contrast_stretch=setting("input_camera_contrast_stretch", False),
                            fps=setting("input_camera_fps", 20.0))
    path = user_path(text)
    if path.is_dir():
        return DirectorySource(path, setting("input_directory_regex", None))
    if not path.is_file():
        raise DeepVisError(f"{text}: no such file or folder (--input takes a folder, an image list,"
                           " a video, an image, camera or camera:N)")
    suffix = path.suffix.lower()
    if suffix in LIST_EXTENSIONS:
        return SiameseListSource(path) if is_siamese_list(path) else ImageListSource(path)
    if suffix in VIDEO_EXTENSIONS:
        return VideoSource(path)
    return ImageFileSource(path)
