"""Download the BVLC reference CaffeNet: deploy prototxt and the ImageNet mean image from BVLC/caffe,
weights from the BVLC model zoo (SHA-1 from its models/bvlc_reference_caffenet/readme.md).

    python model_zoo/bvlc-reference-caffenet/fetch.py     (resumable; files go to the user cache, see app/fetch.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.fetch import fetch_entry  # noqa: E402

FILES = [
    {"name": "deploy.prototxt",
     "url": "https://raw.githubusercontent.com/BVLC/caffe/"
            "9b891540183ddc834a02b2bd81b31afae71b2153/models/bvlc_reference_caffenet/deploy.prototxt",
     "git_blob": "907116ef91c0174fa0e4a27c4895842c53fd71fa"},
    {"name": "bvlc_reference_caffenet.caffemodel",
     "url": "http://dl.caffe.berkeleyvision.org/bvlc_reference_caffenet.caffemodel",
     "sha1": "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"},
    {"name": "ilsvrc_2012_mean.npy",
     "url": "https://raw.githubusercontent.com/BVLC/caffe/"
            "9b891540183ddc834a02b2bd81b31afae71b2153/python/caffe/imagenet/ilsvrc_2012_mean.npy",
     "unverified": "no checksum of the mean file is published"},
]

if __name__ == "__main__":
    fetch_entry(Path(__file__).parent.name, FILES)
