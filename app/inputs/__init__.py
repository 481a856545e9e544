"""Input sources: camera, video, directory, image list, siamese list, single image; one interface.

    source = open_source("photos/")          # or a list .txt, a video, an image, "camera:1", None
    frame = source.read()                     # Frame, or None when nothing is new
    source.next(); source.previous()          # step (wraps); a camera ignores it
    source.toggle_freeze()                    # pause a camera or a video
    source.close()
    net_image = fit_to_input(frame.image, (224, 224), "crop")   # or "stretch"
"""
from app.inputs.camera import CameraSource
from app.inputs.files import DirectorySource, ImageFileSource
from app.inputs.fit import fit_to_input
from app.inputs.lists import ImageListSource, SiameseListSource
from app.inputs.open import open_source
from app.inputs.samples import default_input_dir
from app.inputs.source import Frame, InputSource
from app.inputs.video import VideoSource

__all__ = ["CameraSource", "DirectorySource", "Frame", "ImageFileSource", "ImageListSource",
           "InputSource", "SiameseListSource", "VideoSource", "default_input_dir", "fit_to_input",
           "open_source"]
