"""model_zoo entries: settings that parse and match their nets, fetch scripts with real URLs and
checksums, and whole entries fetched from a local mirror, then loaded by name."""
import hashlib
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from app.errors import DeepVisError
from app.fetch import MIRROR_VARIABLE, fetch_model_files, file_digest, model_files_dir
from app.net import Net
from app.net.caffe import schema
from app.net.caffe.convert import convert_random
from app.net.caffe.reader import read_prototxt
from app.net.spec import ZOO, resolve

CAFFE_ENTRIES = {  # zoo entry -> its deploy prototxt in the test data
    "caffenet-yos": "caffenet_yos_deploy/caffenet-yos-deploy.prototxt",
    "bvlc-reference-caffenet": "caffenet_deploy/deploy.prototxt",
    "bvlc-googlenet": "googlenet_deploy/deploy.prototxt",
    "squeezenet-v1.1": "squeezenet_v1_1_deploy/deploy.prototxt",
    "vgg16": "vgg16_deploy/VGG_ILSVRC_16_layers_deploy.prototxt",
    "resnet-50": "resnet50_deploy/ResNet-50-deploy.prototxt",
}
DIGEST_LENGTHS = {"sha256": 64, "sha1": 40, "git_blob": 40}


def fetch_files(entry: str) -> list:
    """FILES of model_zoo/<entry>/fetch.py, imported as a module (not run)."""
    spec = importlib.util.spec_from_file_location(f"fetch_{entry}", ZOO / entry / "fetch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FILES


def settings(entry: str) -> dict:
    return yaml.safe_load((ZOO / entry / "model.yaml").read_text())


def needed_files(entry: str) -> set:
    """The file names the entry's model.yaml refers to."""
    data = settings(entry)
    mean = data["input"]["mean"]
    return set(data["source"]["caffe"].values()) | ({mean} if isinstance(mean, str) else set())


def declared_size(prototxt) -> tuple:
    """H, W of the input the prototxt declares (input_dim, input_shape or an Input layer)."""
    net = read_prototxt(prototxt)
    dims = list(net.input_dim) or [d for shape in net.input_shape for d in shape.dim]
    if not dims:
        dims = list(net.layer[0].input_param.shape[0].dim)
    return tuple(dims[2:4])


def test_every_caffe_entry_is_listed():
    assert {path.parent.name for path in ZOO.glob("*/fetch.py")} == set(CAFFE_ENTRIES)


@pytest.mark.parametrize("entry", sorted(CAFFE_ENTRIES))
def test_fetch_lists_urls_and_checksums_of_what_the_settings_need(entry):
    files = fetch_files(entry)
    assert {item["name"] for item in files} == needed_files(entry)
    for item in files:
        assert re.match(r"https?://[^ ]+$", item.get("url") or item["page"]), item
        digests = {key: item[key] for key in DIGEST_LENGTHS if key in item}
        assert len(digests) + ("unverified" in item) == 1, f"{item['name']}: a digest, or why there is none"
        for key, value in digests.items():
            assert re.fullmatch(f"[0-9a-f]{{{DIGEST_LENGTHS[key]}}}", value), item
        assert item["name"].endswith(".prototxt") <= ("git_blob" in item)  # every prototxt is pinned


@pytest.mark.parametrize("entry", sorted(CAFFE_ENTRIES))
def test_settings_fit_the_prototxt_that_fetch_downloads(testdata, entry):
    """The test data holds the very file fetch downloads (same git object), and its input size is the yaml's."""
    prototxt = testdata / CAFFE_ENTRIES[entry]
    (listed,) = [item for item in fetch_files(entry) if item["name"].endswith(".prototxt")]
    assert file_digest(prototxt, "git_blob") == listed["git_blob"]
    data = settings(entry)
    assert tuple(data["input"]["size"]) == declared_size(prototxt)
    assert data["input"]["channel_swap"] == [0, 1, 2] and data["labels"] == "imagenet"


@pytest.mark.parametrize("entry", sorted(CAFFE_ENTRIES))
def test_an_entry_not_fetched_yet_says_how(tmp_path, monkeypatch, entry):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DeepVisError, match=f"not downloaded yet; run python .*{re.escape(entry)}/fetch.py"):
        resolve(entry)


def mean_binaryproto(path, value: float, size: int) -> None:
    blob = schema.BlobProto()
    blob.shape.dim.extend((1, 3, size, size))
    blob.data = np.full((3, size, size), value, "<f4").tobytes()
    path.write_bytes(blob.SerializeToString())


def mirror_entry(testdata, mirror, entry: str) -> list:
    """A mirror folder for the entry (test-data prototxt, random weights, a flat mean image) and its
    FILES with the published weight digest replaced by the random file's."""
    folder = mirror / entry
    folder.mkdir(parents=True)
    files = {item["name"]: item for item in fetch_files(entry)}
    prototxt = next(name for name in files if name.endswith(".prototxt"))
    (folder / prototxt).write_bytes((testdata / CAFFE_ENTRIES[entry]).read_bytes())
    for name in needed_files(entry) - {prototxt}:
        if name.endswith(".npy"):
            np.save(folder / name, np.full((3, 256, 256), 110, np.float32))
        elif name.endswith(".binaryproto"):
            mean_binaryproto(folder / name, 110.0, 224)
        else:
            convert_random(folder / prototxt, 0, folder / name)
            if "sha1" in files[name]:
                files[name] = dict(files[name], sha1=hashlib.sha1((folder / name).read_bytes()).hexdigest())
    return list(files.values())


@pytest.mark.parametrize("entry", ["squeezenet-v1.1", "bvlc-googlenet", "resnet-50"])
def test_entry_fetched_from_a_mirror_loads_by_name(testdata, tmp_path, monkeypatch, entry):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    files = mirror_entry(testdata, tmp_path / "mirror", entry)
    monkeypatch.setenv(MIRROR_VARIABLE, (tmp_path / "mirror").as_uri())
    said = []
    paths = fetch_model_files(entry, files, say=said.append)
    assert {path.name for path in paths} == needed_files(entry)
    assert all(path.parent == model_files_dir(entry) for path in paths)
    assert len(said) == sum("unverified" in item for item in files)
    net = Net.load(entry, provider="cpu")
    assert net.input_shape == (3,) + declared_size(testdata / CAFFE_ENTRIES[entry])
    image, mean = np.full((300, 400, 3), 110, np.uint8), settings(entry)["input"]["mean"]
    expected = np.zeros(3) if isinstance(mean, str) else 110 - np.asarray(mean)  # the mirror's mean image is 110
    np.testing.assert_allclose(net.preprocess([image])[0, :, 0, 0], expected, atol=1e-3)
    assert len(net.predict([image])[0]) == 5


def test_files_without_a_direct_download_are_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(MIRROR_VARIABLE, raising=False)
    manual = [item for item in fetch_files("resnet-50") if "page" in item]
    said = []
    with pytest.raises(DeepVisError, match="ResNet-50-model.caffemodel, ResNet_mean.binaryproto not in"):
        fetch_model_files("resnet-50", manual, say=said.append)
    assert len(said) == 2 and all("onedrive.live.com" in line and "save it from" in line for line in said)
    for item in manual:
        (model_files_dir("resnet-50") / item["name"]).write_bytes(b"saved by hand")
    said.clear()
    assert len(fetch_model_files("resnet-50", manual, say=said.append)) == 2
    assert all("not checked" in line for line in said)


def test_cached_files_are_found_by_name(tmp_path, monkeypatch):
    """Net.load("caffenet-yos") after its fetch: the settings point into the cache, the mean image read."""
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    folder = model_files_dir("caffenet-yos")
    folder.mkdir(parents=True)
    for name in needed_files("caffenet-yos"):
        (folder / name).write_bytes(b"")
    np.save(folder / "ilsvrc_2012_mean.npy", np.zeros((3, 256, 256), np.float32))
    spec = resolve("caffenet-yos")
    assert spec.source["caffe"]["prototxt"] == str(folder / "caffenet-yos-deploy.prototxt")
    assert spec.source["caffe"]["weights"] == str(folder / "caffenet-yos-weights")
    assert spec.input.mean.shape == (3, 256, 256) and spec.prob_layer == "prob"


def test_fetch_script_runs_and_says_what_it_did(testdata, tmp_path):
    mirror = tmp_path / "mirror" / "squeezenet-v1.1"
    mirror.mkdir(parents=True)
    (mirror / "deploy.prototxt").write_bytes((testdata / CAFFE_ENTRIES["squeezenet-v1.1"]).read_bytes())
    environment = dict(os.environ, DEEPVIS_CACHE=str(tmp_path / "cache"), **{MIRROR_VARIABLE: mirror.parent.as_uri()})

    def run():  # from elsewhere than the repository: the script finds the app itself
        return subprocess.run([sys.executable, str(ZOO / "squeezenet-v1.1" / "fetch.py")], capture_output=True,
                              text=True, env=environment, cwd=tmp_path)
    failed = run()
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and "squeezenet_v1.1.caffemodel" in failed.stderr
    (mirror / "squeezenet_v1.1.caffemodel").write_bytes(b"weights")
    done = run()
    assert done.returncode == 0, done.stderr
    assert "squeezenet_v1.1.caffemodel: not checked (DeepScale publishes no checksum)" in done.stdout
    assert "2 files in" in done.stdout


def test_a_caffe_entry_loads_with_random_weights_from_its_prototxt_alone(testdata, tmp_path):
    """fetch.py --no-weights fetches all but the weights; --random-weights then needs no more."""
    mirror = tmp_path / "mirror" / "squeezenet-v1.1"
    mirror.mkdir(parents=True)
    (mirror / "deploy.prototxt").write_bytes((testdata / CAFFE_ENTRIES["squeezenet-v1.1"]).read_bytes())
    environment = dict(os.environ, DEEPVIS_CACHE=str(tmp_path / "cache"), **{MIRROR_VARIABLE: mirror.parent.as_uri()})
    fetched = subprocess.run([sys.executable, str(ZOO / "squeezenet-v1.1" / "fetch.py"), "--no-weights"],
                             capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert "1 files in" in fetched.stdout and "--random-weights SEED" in fetched.stdout
    wrong = subprocess.run([sys.executable, str(ZOO / "squeezenet-v1.1" / "fetch.py"), "--weights-only"],
                           capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "--no-weights" in wrong.stderr
    loaded = subprocess.run([sys.executable, "-c", (
        "from app.net import Net\n"
        "from app.net.spec import resolve\n"
        "from app.errors import DeepVisError\n"
        "net = Net.load('squeezenet-v1.1', provider='cpu', random_weights=3)\n"
        "print(net.spec.random_weights_seed, net.input_shape)\n"
        "try:\n    resolve('squeezenet-v1.1')\nexcept DeepVisError as error:\n    print(error)\n")],
        capture_output=True, text=True, env=dict(environment, PYTHONPATH=str(ZOO.parent)), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    seed_line, error_line = loaded.stdout.splitlines()
    assert seed_line == "3 (3, 227, 227)"
    assert "squeezenet_v1.1.caffemodel is not downloaded yet" in error_line and "--no-weights" in error_line
