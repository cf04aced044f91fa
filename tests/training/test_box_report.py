"""The detector's training report: train_report.json round-trips, train_report.html shows the float and int8
mAP, each class's AP, the curves and the example pictures (ground truth beside the int8 model's boxes), every
picture inline, and headless Chromium loads every one of them.

The document is made here by hand, shaped as the detector trainer's, with real photos (scikit-image's bundled
ones) written under tmp_path as the example test pictures.
"""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from browser import picture_widths
from PIL import Image
from skimage import data as photos
from test_train_report import inline_images, near

from edgekit.errors import EdgekitError
from edgekit.evaluation import metrics
from edgekit.runtime.annotate import pascal_colormap
from edgekit.training import box_charts, box_report, charts

CLASSES = ["face", "coin <b>&"]
RECALL = np.linspace(0, 1, 101)


def box_colour(class_index):
    """The colour `annotate.draw_objects` gives a class's boxes (the palette past its black)."""
    return tuple(int(v) for v in pascal_colormap()[class_index % 255 + 1])


def history_rows(epochs=6):
    return [{"epoch": k + 1, "loss": 2.0 / (k + 1), "class_loss": 1.2 / (k + 1), "box_loss": 0.8 / (k + 1),
             "val_loss": 2.2 / (k + 1) + 0.3 * (k == epochs - 1), "val_class_loss": 1.3 / (k + 1),
             "val_box_loss": 0.9 / (k + 1), "learning_rate": 0.08, "seconds": 4.0} for k in range(epochs)]


def scores(map_, map50, face, coin, precision):
    return {"map": map_, "map50": map50, "per_class": {"face": face, CLASSES[1]: coin},
            "pr_curve": {"recall": RECALL.tolist(), "precision": precision}}


@pytest.fixture
def document():
    return {
        "task": "detection", "model": "efficientdet-lite0", "input_size": [320, 320], "classes": CLASSES,
        "data": {"format": "coco", "root": "/data/<boxes>", "clipped": 3, "dropped": 1,
                 "train": {"pictures": 120, "boxes": 300, "empty": 6},
                 "val": {"pictures": 20, "boxes": 48, "empty": 1},
                 "test": {"pictures": 30, "boxes": 70, "empty": 2},
                 "boxes_per_class": {"face": 280, CLASSES[1]: 138}},
        "recipe": {"epochs": 6, "batch_size": 8, "learning_rate": 0.08, "optimizer": "SGD momentum 0.9",
                   "freeze_backbone": False, "weights": "imagenet", "focal_alpha": 0.25, "focal_gamma": 1.5,
                   "box_loss_weight": 50.0, "huber_delta": 0.1, "jitter": (0.1, 2.0), "flip": True},
        "history": history_rows(), "best_epoch": 5,
        "test": {"float": scores(0.62, 0.88, {"ap": 0.7, "ap50": 0.93}, {"ap": 0.54, "ap50": 0.83},
                                 [0.8] * 101),
                 "int8": scores(np.float32(0.608), 0.876, {"ap": 0.69, "ap50": 0.925},
                                {"ap": 0.526, "ap50": 0.827}, np.full(101, 0.5))},
        "edgetpu": {"ops": 260, "tpu": 258, "cpu": 2, "cpu_ops": {"TFLite_Detection_PostProcess": 1, "LOGISTIC": 1},
                    "parameter_bytes": 4_400_000, "fatal": None},
        "compile": None,
        "files": {"keras": "/out/model.keras", "int8": "/out/model_int8.tflite", "labels": "/out/labels.txt",
                  "edgetpu": None},
        "timings": {"train": 900.0, "export": 80.5, "evaluate": 12.0},
        "warnings": ["3 boxes were clipped to their picture"],
    }


@pytest.fixture
def examples(tmp_path):
    """Two real photos (as JPEG files) with boxes in their pixels, and a picture whose file has gone."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    astronaut, coffee = folder / "astronaut <i>.jpg", folder / "coffee.jpg"
    Image.fromarray(photos.astronaut()).save(astronaut, quality=90)  # 512 x 512
    Image.fromarray(photos.coffee()).save(coffee, quality=90)  # 600 x 400
    return [{"path": str(astronaut), "truth": [(0, (160, 40, 320, 220))],
             "predicted": [(0, 0.91, (150, 50, 330, 230)), (1, 0.42, (40, 400, 120, 480))]},
            {"path": str(coffee), "truth": [(1, (200, 100, 400, 300)), (0, (10, 10, 60, 60))],
             "predicted": [(1, 0.77, (210, 110, 390, 290))]},
            {"path": str(folder / "gone.jpg"), "truth": [(0, (1, 1, 5, 5))], "predicted": []}]


# --- train_report.json and .html ------------------------------------------------------------------------

def test_json_round_trips_without_the_examples(document, examples, tmp_path):
    document["history"][1]["val_box_loss"] = float("nan")  # a diverged epoch: JSON has no NaN
    json_path, html_path = box_report.write(tmp_path / "out", document, examples)
    assert (os.path.basename(json_path), os.path.basename(html_path)) == ("train_report.json", "train_report.html")
    text = Path(json_path).read_text(encoding="utf-8")
    assert "NaN" not in text and "astronaut" not in text  # the examples are drawn, not stored
    loaded = json.loads(text)
    assert loaded == box_report.plain(document)
    assert loaded["test"]["int8"]["map"] == pytest.approx(0.608) and len(loaded["test"]["int8"]["pr_curve"]
                                                                           ["precision"]) == 101
    assert loaded["history"][1]["val_box_loss"] is None and loaded["recipe"]["jitter"] == [0.1, 2.0]
    assert sorted(os.listdir(tmp_path / "out")) == ["train_report.html", "train_report.json"]


def test_html_shows_the_metrics_and_the_run(document, examples):
    page = box_report.to_html(document, examples)
    headings = [h.split(" (")[0].split(":")[0] for h in re.findall(r"<h[12]>([^<]*)", page)]
    assert headings == ["efficientdet-lite0", "Warnings", "Training curves", "Per class", "Precision-recall",
                        "Test pictures", "Data", "Recipe", "Time per phase"]
    # mAP and mAP@0.5, int8 first, then the gap in points.
    assert "<tr><th></th><th>test, int8</th><th>test, float</th></tr>" in page
    assert "<tr><td>mAP</td><td>60.8%</td><td>62.0%</td></tr><tr><td>mAP@0.5</td><td>87.6%</td><td>88.0%</td>" in page
    assert ("The int8 model&#x27;s test mAP is 1.2 points below the float model&#x27;s, its mAP@0.5 0.4 points "
            "below the float&#x27;s.") in page
    # Each class's AP and AP@0.5 for both models; the class name escaped.
    assert "<td>face</td><td>69.0%</td><td>92.5%</td><td>70.0%</td><td>93.0%</td>" in page
    assert "<td>coin &lt;b&gt;&amp;</td><td>52.6%</td><td>82.7%</td><td>54.0%</td><td>83.0%</td>" in page
    assert "<b>&" not in page and "astronaut &lt;i&gt;.jpg" in page and "<i>" not in page
    assert "Task detection at 320 x 320 pixels, 2 classes: face, coin &lt;b&gt;&amp;." in page
    assert "258 of 260 ops run on the Edge TPU (predicted); on the CPU: LOGISTIC x1, TFLite_Detection_PostProcess x1" \
        in page
    assert "<td>edgetpu</td><td>not written</td>" in page and "3 boxes were clipped" in page
    assert "6 epochs, best epoch 5 (its weights are kept)." in page
    # The data: each split, the boxes per class, what was clipped and dropped; the recipe as people read it.
    assert "<p>From /data/&lt;boxes&gt; (coco).</p>" in page
    assert "<tr><td>validation</td><td>20</td><td>48</td><td>1</td></tr>" in page
    assert "<tr><td>face</td><td>280</td></tr>" in page
    assert "<p>3 boxes clipped to their picture, 1 dropped for having no area.</p>" in page
    assert "<td>jitter</td><td>0.1 to 2</td>" in page and "<td>freeze backbone</td><td>no</td>" in page
    assert "<td>export</td><td>80.5</td>" in page
    assert "astronaut &lt;i&gt;.jpg: 1 box, 2 found" in page and "coffee.jpg: 2 boxes, 1 found" in page


def test_html_is_self_contained(document, examples):
    page = box_report.to_html(document, examples)
    pictures = inline_images(page)
    # Loss curves and precision-recall (PNG), then the three example pairs (JPEG).
    assert [mime for mime, _ in pictures] == ["image/png"] * 2 + ["image/jpeg"] * 3
    assert pictures[0][1].size == box_charts.LOSS_CURVES_SIZE and pictures[1][1].size == box_charts.PR_SIZE
    side, gap, header = box_charts.EXAMPLE_SIDE, box_charts.EXAMPLE_GAP, box_charts.EXAMPLE_HEADER
    assert pictures[2][1].size == (2 * side + gap, side + header)  # square
    assert pictures[3][1].size == (2 * side + gap, round(400 * side / 600) + header)  # landscape
    assert not re.search(r"(src|href)=(?!'data:)", page)
    # The picture that has gone is shown as grey placeholders, and the page says why.
    assert "gone.jpg: no such image file" in page


def test_a_document_with_only_the_required_parts(tmp_path):
    document = {"task": "detection", "model": "efficientdet-lite0", "classes": ["face"]}
    json_path, html_path = box_report.write(tmp_path, document)
    page = Path(html_path).read_text(encoding="utf-8")
    assert json.loads(Path(json_path).read_text(encoding="utf-8")) == document
    assert "Edge TPU: not checked." in page and "no epochs recorded" in page and "<img" not in page
    assert "<h2>Warnings</h2><p>none</p>" in page and "mAP" not in page


def test_examples_are_capped_with_a_note(document, examples):
    many = [examples[1]] * (box_report.MAX_EXAMPLES + 2)
    page = box_report.to_html(document, many)
    assert page.count("<figure") == box_report.MAX_EXAMPLES
    assert f"The first {box_report.MAX_EXAMPLES} of {box_report.MAX_EXAMPLES + 2} example pictures." in page


def test_an_unwritable_folder_is_one_clear_error(tmp_path, document):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(EdgekitError, match=r"file/out: cannot write the training report there .*choose another"):
        box_report.write(blocker / "out", document)


def test_scores_from_coco_details_fill_the_page(tmp_path):
    """COCOeval's figures as the trainer passes them: a class without test boxes has no AP (n/a), and the
    metrics' own namedtuples and lists need no conversion."""
    images = {1: ("a.jpg", 100, 100)}
    annotations = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600.0, "iscrowd": 0}]
    found = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9}]
    details = metrics.coco_details(images, {1: "face", 2: "coin"}, annotations, found)
    per_class = {name: None if details.per_class[k] is None else dict(details.per_class[k]._asdict())
                 for k, name in ((1, "face"), (2, "coin"))}
    test = {"map": details.map, "map50": details.map50, "per_class": per_class, "pr_curve": details.pr_curve}
    document = {"task": "detection", "model": "m", "classes": ["face", "coin"], "test": {"int8": test}}
    page = Path(box_report.write(tmp_path, document).html_path).read_text(encoding="utf-8")
    assert "<td>coin</td><td>n/a</td><td>n/a</td>" in page and "<td>face</td><td>100.0%</td><td>100.0%</td>" in page
    assert "<tr><td>mAP</td><td>100.0%</td></tr>" in page and "alt='precision-recall curves'" in page


# --- the pictures ---------------------------------------------------------------------------------------

def test_loss_curves_draw_three_panels():
    image = box_charts.loss_curves(history_rows(), best_epoch=5)
    assert image.size == box_charts.LOSS_CURVES_SIZE
    plots = np.asarray(image)[:box_charts.LOSS_CURVES_SIZE[1] - 60]  # above the legend
    third = box_charts.LOSS_CURVES_SIZE[0] // 3
    for k in range(3):
        panel = plots[:, k * third:(k + 1) * third]
        for colour in (charts.TRAIN_COLOUR, charts.VALIDATION_COLOUR, charts.BEST_COLOUR):
            assert near(panel, colour, 30).sum() > 50, (k, colour)
    # Without validation losses only the training curves are drawn.
    alone = np.asarray(box_charts.loss_curves([dict(row, val_loss=None, val_class_loss=None, val_box_loss=None)
                                               for row in history_rows()]))
    assert near(alone[:-60], charts.VALIDATION_COLOUR, 30).sum() == 0
    assert box_charts.loss_data(history_rows(3)).series["val_class_loss"] == pytest.approx([1.3, 0.65, 1.3 / 3])


def test_precision_recall_curves_sit_at_their_precision(document):
    models = {"int8": document["test"]["int8"], "float": document["test"]["float"]}
    pixels = np.asarray(box_charts.precision_recall(box_report.plain(models)))
    x0, y0, x1, y1 = box_charts.PR_AREA
    for name, precision in (("int8", 0.5), ("float", 0.8)):
        rows = np.nonzero(near(pixels[:, x0 + 5:x1 - 5], box_charts.MODEL_COLOURS[name], 30).sum(axis=1) > 100)[0]
        assert len(rows) and abs(rows.mean() - (y1 - precision * (y1 - y0))) <= 2, name
    assert box_charts.pr_curves({"int8": {"pr_curve": {"recall": [0, 1], "precision": [1.0]}}}) == []


def test_truth_beside_prediction(examples):
    astronaut = examples[0]
    pair = box_charts.truth_and_prediction(astronaut["path"], astronaut["truth"], astronaut["predicted"], CLASSES)
    assert pair.problem is None
    pixels = np.asarray(pair.image)
    layout = box_charts.pair_layout(512, 512)
    left = pixels[layout.left[1]:, :layout.picture_size[0]]
    right = pixels[layout.right[1]:, layout.right[0]:]
    scale = layout.scale

    def edge(half, box, colour):
        """The share of the box's bottom edge (scaled into the half, give or take the line's width) drawn in
        `colour`."""
        xmin, _, xmax, ymax = (round(v * scale) for v in box)
        return near(half[ymax - 2:ymax + 2, xmin + 3:xmax - 3], colour, 10).any(axis=0).mean()

    face, coin = box_colour(0), box_colour(1)
    assert edge(left, (160, 40, 320, 220), face) > 0.9 and edge(right, (160, 40, 320, 220), face) < 0.2
    assert edge(right, (150, 50, 330, 230), face) > 0.9 and edge(left, (150, 50, 330, 230), face) < 0.2
    # The second class appears only among the predictions.
    assert near(left, coin, 10).sum() == 0 and edge(right, (40, 400, 120, 480), coin) > 0.9
    missing = box_charts.truth_and_prediction(examples[2]["path"], examples[2]["truth"], [], CLASSES)
    assert "no such image file" in missing.problem
    grey = np.asarray(missing.image)[box_charts.EXAMPLE_HEADER:]
    assert near(grey, charts.PLACEHOLDER_GREY, 12).mean() > 0.5


# --- in a browser ---------------------------------------------------------------------------------------

def test_chromium_loads_every_picture(document, examples, tmp_path):
    _, html_path = box_report.write(tmp_path / "out", document, examples)
    widths = picture_widths(html_path, tmp_path, "the detector report's browser test")
    page = Path(html_path).read_text(encoding="utf-8")
    assert widths == [image.width for _, image in inline_images(page)]
    assert len(widths) == 5 and min(widths) > 0
