"""Download VGG16: deploy prototxt from the authors' model-zoo gist, weights from robots.ox.ac.uk (no
checksum is published for them). The model is under a non-commercial license (CC BY-NC 4.0).

    python model_zoo/vgg16/fetch.py     (resumable; files go to the user cache, see app/fetch.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.fetch import fetch_entry  # noqa: E402

FILES = [
    {"name": "VGG_ILSVRC_16_layers_deploy.prototxt",
     "url": "https://gist.githubusercontent.com/ksimonyan/211839e770f7b538e2d8/raw/"
            "0067c9b32f60362c74f4c445a080beed06b07eb3/VGG_ILSVRC_16_layers_deploy.prototxt",
     "git_blob": "0067c9b32f60362c74f4c445a080beed06b07eb3"},
    {"name": "VGG_ILSVRC_16_layers.caffemodel",
     "url": "http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/VGG_ILSVRC_16_layers.caffemodel",
     "unverified": "the VGG group publishes no checksum"},
]

if __name__ == "__main__":
    fetch_entry(Path(__file__).parent.name, FILES)
