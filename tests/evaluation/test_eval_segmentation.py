"""Segmentation: Coral's DeepLab on its bird picture against the ground-truth mask (pycoral's test: pixel
IoU > 0.90), and mean IoU from pixel counts checked by hand."""

import os

import numpy as np
import pytest

from edgekit.cli.cmd_eval import eval_document
from edgekit.evaluation import evaluate, metrics


def test_deeplab_on_the_bird(tmp_path, coral, no_edgetpu_library):
    for folder, name in (("images", "bird_segmentation.bmp"), ("masks", "bird_segmentation_mask.bmp")):
        (tmp_path / "data" / folder).mkdir(parents=True)
        os.symlink(coral(name), tmp_path / "data" / folder / "bird.bmp")
    report = evaluate.evaluate([coral("deeplabv3_mnv2_dm05_pascal_quant.tflite")], tmp_path / "data",
                               labels_path=coral("pascal_voc_segmentation_labels.txt"), device="cpu",
                               progress=False)
    found = report.models[0]
    assert report.task == "segmentation" and report.images == 1
    assert found.mask_iou > 0.90  # pycoral's segment_test threshold, same measure (array_iou)
    labels = {c.label: c.iou for c in found.per_class}
    assert labels["bird"] > 0.6 and labels["background"] > 0.9
    assert found.miou == pytest.approx(np.mean(list(labels.values())), abs=1e-6)
    # One model: its mean IoU at the top level of the JSON too, and the classes as objects.
    document = eval_document(report)
    assert document["miou"] == found.miou
    assert document["models"][0]["per_class"] == [{"id": c.id, "label": c.label, "iou": c.iou} for c in found.per_class]


def test_mean_iou_by_hand():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    predicted = np.array([[0, 1, 1, 1], [0, 0, 0, 2]])
    counts = metrics.mask_counts(predicted, truth)
    # The 255 pixel is left out: class 0 meets in 3 of 5 pixels, class 1 in 2 of 4; class 2 never
    # appears outside the ignored pixel, so it has no union.
    assert counts == ({0: (3, 5), 1: (2, 4)}, 5, 7)
    found = metrics.mean_iou([counts, counts])
    assert found.miou == pytest.approx((3 / 5 + 2 / 4) / 2)
    assert found.pixel_accuracy == pytest.approx(5 / 7)
