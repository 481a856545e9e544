"""Download caffenet-yos: its deploy prototxt (V1 format) from the original toolbox's repository,
the weights and the ImageNet mean image from the toolbox authors' site (no checksum published).

    python model_zoo/caffenet-yos/fetch.py     (resumable; files go to the user cache, see app/fetch.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.fetch import fetch_entry  # noqa: E402

FILES = [
    {"name": "caffenet-yos-deploy.prototxt",
     "url": "https://raw.githubusercontent.com/yosinski/deep-visualization-toolbox/"
            "4e739ae9045fb20a9c8a7a4cf57590139f6b4585/models/caffenet-yos/caffenet-yos-deploy.prototxt",
     "git_blob": "a14b969a3a1e4e9119b60fe7ab6a170973913f5e"},
    {"name": "caffenet-yos-weights", "url": "http://c.yosinski.com/caffenet-yos-weights",
     "unverified": "the toolbox authors publish no checksum"},
    {"name": "ilsvrc_2012_mean.npy", "url": "http://c.yosinski.com/ilsvrc_2012_mean.npy",
     "unverified": "the toolbox authors publish no checksum"},
]

if __name__ == "__main__":
    fetch_entry(Path(__file__).parent.name, FILES)
