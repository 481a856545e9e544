"""Download SqueezeNet v1.1: deploy prototxt and weights from DeepScale/SqueezeNet (no checksum is
published for the weights).

    python model_zoo/squeezenet-v1.1/fetch.py     (resumable; files go to the user cache, see app/fetch.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.fetch import fetch_entry  # noqa: E402

FILES = [
    {"name": "deploy.prototxt",
     "url": "https://raw.githubusercontent.com/DeepScale/SqueezeNet/"
            "51147dc0681638c28aad593b9e923f3500117125/SqueezeNet_v1.1/deploy.prototxt",
     "git_blob": "8295b13fa640bf30c5d19e066ef08b6d4219efd7"},
    {"name": "squeezenet_v1.1.caffemodel",
     "url": "https://raw.githubusercontent.com/DeepScale/SqueezeNet/"
            "51147dc0681638c28aad593b9e923f3500117125/SqueezeNet_v1.1/squeezenet_v1.1.caffemodel",
     "unverified": "DeepScale publishes no checksum"},
]

if __name__ == "__main__":
    fetch_entry(Path(__file__).parent.name, FILES)
