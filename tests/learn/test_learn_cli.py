"""`edgekit learn imprint|backprop` on folders of Coral's imprinting pictures, with Coral's extractor and its
Edge TPU twin: the written models classify the test pictures, carry the class names, leave the inputs
alone, and every bad input gets its one line."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from cli_runner import edgekit, run_json
from testdata import coral_file

from edgekit.tflite import heads
from edgekit.tflite.graph_edit import GraphEditor
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

pytestmark = pytest.mark.usefixtures("no_edgetpu_library")

EXTRACTOR = "mobilenet_v1_1.0_224_quant_embedding_extractor"
TRAIN = {"cat": ["cat_train_0"], "dog": ["dog_train_0"], "hotdog": ["hotdog_train_0", "hotdog_train_1"]}
TEST = {"cat": "cat_test_0", "dog": "dog_test_0", "hotdog": "hotdog_test_0"}


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """cat/, dog/, hotdog/ with pycoral's training pictures."""
    folder = tmp_path_factory.mktemp("pictures")
    for label, names in TRAIN.items():
        (folder / label).mkdir()
        for name in names:
            shutil.copy(coral_file(f"imprinting/{name}.bmp"), folder / label)
    return folder


@pytest.fixture(scope="module")
def imprinting_pair(tmp_path_factory):
    """An imprinting model compiled for the Edge TPU (Coral's compiled extractor with the head) and its CPU twin
    beside it (Coral's CPU extractor with the same head): one base class, Grace Hopper."""
    folder = tmp_path_factory.mktemp("pair")
    cpu = coral_file(f"{EXTRACTOR}.tflite").read_bytes()
    compiled = coral_file(f"{EXTRACTOR}_edgetpu.tflite").read_bytes()
    weights = np.random.default_rng(0).normal(size=(1, 1024))
    (folder / "head.tflite").write_bytes(heads.add_imprinting_head(cpu, weights))
    (folder / "head_edgetpu.tflite").write_bytes(heads.add_imprinting_head(compiled, weights))
    return folder / "head_edgetpu.tflite", folder / "head.tflite"


def test_imprint_a_folder(pictures, imprinting_pair, tmp_path):
    _, model = imprinting_pair
    before = digest(model)
    out = tmp_path / "pets.tflite"
    result = edgekit("learn", "imprint", model, "--data", pictures, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(c["id"], c["label"], c["pictures"], c["new"]) for c in report["classes"]] == [
        (0, "cat", 1, True), (1, "dog", 1, True), (2, "hotdog", 2, True)]
    assert report["num_classes"] == 3 and report["pictures"] == 4 and report["device"] == "cpu"
    assert read_edgekit_metadata(read_model(out))["labels"] == ["cat", "dog", "hotdog"]
    found = run_json(out, [coral_file(f"imprinting/{name}.bmp") for name in TEST.values()], top_k=1)
    assert [r["classes"][0]["label"] for r in found["results"]] == list(TEST)
    assert digest(model) == before


def test_imprint_more_into_a_saved_model(pictures, imprinting_pair, tmp_path):
    _, model = imprinting_pair
    first = tmp_path / "cats.tflite"
    cats = tmp_path / "only_cats"
    shutil.copytree(pictures / "cat", cats / "cat")
    assert edgekit("learn", "imprint", model, "--data", cats, "--out", first).exit_code == 0
    out = tmp_path / "all.tflite"
    result = edgekit("learn", "imprint", first, "--data", pictures, "--out", out, "--keep-classes", "--json")
    assert result.exit_code == 0, result.output
    # cat is imprinted already: it takes the new pictures; dog and hot dog are new.
    assert [(c["id"], c["label"], c["new"]) for c in json.loads(result.stdout)["classes"]] == [
        (0, "cat", False), (1, "dog", True), (2, "hotdog", True)]
    found = run_json(out, [coral_file(f"imprinting/{name}.bmp") for name in TEST.values()], top_k=1)
    assert [r["classes"][0]["label"] for r in found["results"]] == list(TEST)


def test_imprint_a_compiled_model_and_its_twin(pictures, imprinting_pair, tmp_path):
    compiled, twin = imprinting_pair
    out = tmp_path / "pets_edgetpu.tflite"
    result = edgekit("learn", "imprint", compiled, "--data", pictures, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["twin"] == str(tmp_path / "pets.tflite") and report["device"] == "cpu"
    # The Edge TPU part passes through; the head on the CPU holds the same classes as the twin's.
    written, written_twin = GraphEditor.from_bytes(out.read_bytes()), GraphEditor.from_bytes(
        (tmp_path / "pets.tflite").read_bytes())
    assert written.op_names()[0] == "edgetpu-custom-op"
    head, twin_head = heads.read_imprinting_head(written), heads.read_imprinting_head(written_twin)
    assert head.num_classes == twin_head.num_classes == 3
    assert np.array_equal(written.array(head.kernel), written_twin.array(twin_head.kernel))
    found = run_json(out, [coral_file(f"imprinting/{name}.bmp") for name in TEST.values()], top_k=1)
    assert [r["classes"][0]["label"] for r in found["results"]] == list(TEST)


def test_backprop_a_folder(pictures, tmp_path):
    extractor = coral_file(f"{EXTRACTOR}.tflite")
    out = tmp_path / "pets.tflite"
    result = edgekit("learn", "backprop", extractor, "--data", pictures, "--out", out, "--epochs", "200",
                     "--lr", "0.05", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["train_accuracy"] == 1.0 and report["iterations"] == 200
    assert [c["label"] for c in report["classes"]] == ["cat", "dog", "hotdog"]
    assert GraphEditor.from_bytes(out.read_bytes()).op_names()[-2:] == ["FULLY_CONNECTED", "SOFTMAX"]
    found = run_json(out, [coral_file(f"imprinting/{name}.bmp") for name in TEST.values()], top_k=1)
    assert [r["classes"][0]["label"] for r in found["results"]] == list(TEST)


@pytest.mark.parametrize("case", ["one class", "same file", "no folder", "no classes", "no head"])
def test_bad_input_gets_one_line(case, pictures, imprinting_pair, tmp_path):
    _, model = imprinting_pair
    extractor = coral_file(f"{EXTRACTOR}.tflite")
    if case == "one class":
        single = tmp_path / "single"
        shutil.copytree(pictures / "cat", single / "cat")
        args = ["backprop", extractor, "--data", single, "--out", tmp_path / "x.tflite"]
        expected = (f"{single}: only one class (cat); backprop needs at least two classes, one sub-folder each")
    elif case == "same file":
        args = ["imprint", model, "--data", pictures, "--out", model]
        expected = f"--out {model} is the input model, which edgekit never overwrites: give another file"
    elif case == "no folder":
        args = ["imprint", model, "--data", tmp_path / "missing", "--out", tmp_path / "x.tflite"]
        expected = (f"{tmp_path / 'missing'}: not a folder; --data takes a folder with one sub-folder of pictures "
                    "per class")
    elif case == "no classes":
        (tmp_path / "empty").mkdir()
        args = ["imprint", model, "--data", tmp_path / "empty", "--out", tmp_path / "x.tflite"]
        expected = (f"{tmp_path / 'empty'}: no sub-folder with pictures; --data takes a folder with one sub-folder "
                    "of pictures per class (cat/1.jpg, dog/2.jpg, ...)")
    else:
        args = ["imprint", extractor, "--data", pictures, "--out", tmp_path / "x.tflite"]
        expected = (f"{extractor}: not an imprinting model: it has no L2_NORMALIZATION op; make one with "
                    "`edgekit convert efficientnet-lite0 --imprinting` (or add the head to an embedding extractor "
                    "with edgekit.tflite.heads.add_imprinting_head)")
    result = edgekit("learn", *args)
    assert result.exit_code == 1
    assert result.stderr == f"edgekit: error: {expected}\n"
    assert not (tmp_path / "x.tflite").exists()
