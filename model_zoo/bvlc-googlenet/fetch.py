"""Download BVLC GoogLeNet: deploy prototxt from BVLC/caffe, weights from the BVLC model zoo (SHA-1
from its models/bvlc_googlenet/readme.md).

    python model_zoo/bvlc-googlenet/fetch.py     (resumable; files go to the user cache, see app/fetch.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.fetch import fetch_entry  # noqa: E402

FILES = [
    {"name": "deploy.prototxt",
     "url": "https://raw.githubusercontent.com/BVLC/caffe/"
            "9b891540183ddc834a02b2bd81b31afae71b2153/models/bvlc_googlenet/deploy.prototxt",
     "git_blob": "50b54a9f3c17a38bb399b818e9b4acd3d95c19c6"},
    {"name": "bvlc_googlenet.caffemodel", "url": "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel",
     "sha1": "405fc5acd08a3bb12de8ee5e23a96bec22f08204"},
]

if __name__ == "__main__":
    fetch_entry(Path(__file__).parent.name, FILES)
