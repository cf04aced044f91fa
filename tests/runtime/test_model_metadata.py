"""edgekit's metadata (embedded or sidecar) makes `run` need no flags and finds renamed CPU twins."""

import json
import shutil

from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner
from edgekit.tflite.metadata import read_edgekit_metadata, sidecar_path
from edgekit.tflite.model import read_model
from model_edits import with_metadata


def imagenet_names(coral):
    return coral("imagenet_labels.txt").read_text().splitlines()


def test_embedded_metadata_gives_labels_and_task(coral, tmp_path):
    document = {"task": "classification", "labels": imagenet_names(coral), "resize": "bilinear"}
    model = with_metadata(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "m.tflite", "edgekit",
                          json.dumps(document).encode())
    assert read_edgekit_metadata(read_model(model)) == document
    runner = Runner(open_model(model, device="cpu"), top_k=3)
    result = runner.run_image(coral("cat.bmp"))
    assert "tiger cat" in [runner.label(c.id) for c in result.classes]


def test_sidecar_names_a_renamed_cpu_twin(coral, tmp_path, no_edgetpu_library):
    twin = tmp_path / "classifier_edgetpu.tflite"
    shutil.copyfile(coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite"), twin)
    shutil.copyfile(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "classifier_int8.tflite")
    with open(sidecar_path(twin), "w") as f:
        json.dump({"cpu_model": "classifier_int8.tflite"}, f)
    notices = []
    opened = open_model(twin, device="auto", notice=notices.append)
    assert opened.path == str(tmp_path / "classifier_int8.tflite")
    assert notices and "classifier_int8.tflite" in notices[0]


def test_broken_metadata_is_ignored(coral, tmp_path):
    model = with_metadata(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "m.tflite", "edgekit",
                          b"\xff{not json")
    assert read_edgekit_metadata(read_model(model)) == {}
