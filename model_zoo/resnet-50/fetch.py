"""Download ResNet-50: the deploy prototxt from KaimingHe/deep-residual-networks. Its weights and
mean image are only on the authors' OneDrive folder, which has no direct download links: this
script says where to save them, and checks that they are there.

    python model_zoo/resnet-50/fetch.py     (resumable; files go to the user cache, see app/fetch.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.fetch import fetch_entry  # noqa: E402

ONEDRIVE = "https://onedrive.live.com/?authkey=%21AAFW2-FVoxeVRck&id=4006CBB8476FF777%2117887&cid=4006CBB8476FF777"
FILES = [
    {"name": "ResNet-50-deploy.prototxt",
     "url": "https://raw.githubusercontent.com/KaimingHe/deep-residual-networks/"
            "a7026cb6d478e131b765b898c312e25f9f6dc031/prototxt/ResNet-50-deploy.prototxt",
     "git_blob": "cc50de4cc4c01c5baa900322c4e30be05eac64e5"},
    {"name": "ResNet-50-model.caffemodel", "page": ONEDRIVE, "unverified": "the authors publish no checksum"},
    {"name": "ResNet_mean.binaryproto", "page": ONEDRIVE, "unverified": "the authors publish no checksum"},
]

if __name__ == "__main__":
    fetch_entry(Path(__file__).parent.name, FILES)
