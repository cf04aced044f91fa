"""The training report: train_report.json round-trips, train_report.html escapes what users named and holds
every picture inline, the pictures show what they claim, and headless Chromium loads every one of them.

The document is made here by hand, shaped as the trainer's, with real photos (scikit-image's bundled ones)
written under tmp_path as the misclassified test pictures.
"""

import base64
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from browser import picture_widths
from PIL import Image
from skimage import data as photos

from edgekit.errors import EdgekitError
from edgekit.training import charts, train_report

ODD_LABEL = "<b>&"
LABELS = ["cat", "coffee", ODD_LABEL]


def history_rows(head=3, fine_tune=3):
    """A plausible run: loss falls and accuracy rises, a head phase then a fine-tune phase."""
    rows = []
    for k in range(head + fine_tune):
        rows.append({"epoch": k + 1, "phase": "head" if k < head else "fine-tune",
                     "loss": 1.2 / (k + 1), "accuracy": 0.5 + 0.07 * k,
                     "val_loss": 1.0 / (k + 1) + 0.05 * (k == head + fine_tune - 1),
                     "val_accuracy": 0.55 + 0.06 * k, "learning_rate": 0.005, "seconds": 1.5})
    return rows


def per_class(matrix):
    counts = np.asarray(matrix)
    return {label: {"precision": float(counts[k, k] / counts[:, k].sum()),
                    "recall": float(counts[k, k] / counts[k].sum()), "support": int(counts[k].sum())}
            for k, label in enumerate(LABELS)}


@pytest.fixture
def pictures(tmp_path):
    """Real photos as JPEG files, the way a user's test pictures are; and a path whose file has gone."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    paths = {}
    for name, photo in (("chelsea <i>.jpg", photos.chelsea()), ("coffee.jpg", photos.coffee())):
        paths[name] = folder / name
        Image.fromarray(photo).save(paths[name], quality=90)
    paths["gone.jpg"] = folder / "gone.jpg"
    return paths


@pytest.fixture
def document(pictures):
    int8 = np.array([[45, 4, 1], [3, 40, 7], [0, 2, 48]], dtype=np.int64)
    float_ = [[46, 3, 1], [3, 41, 6], [0, 2, 48]]
    return {
        "model": "efficientnet-lite0", "task": "classification", "labels": LABELS,
        "recipe": {"mode": "fine-tune", "epochs": 6, "batch_size": 32, "learning_rate": 0.005,
                   "optimizer": "SGD momentum 0.9", "augment": False, "label_smoothing": 0.1, "dropout": 0.2,
                   "class_weights": {"cat": 1.0, "coffee": 1.25, ODD_LABEL: 0.8}, "seed": 0,
                   "input_size": (224, 224)},
        "data": {"source": "/data/<pets>", "train": 800, "val": 100, "test": 150,
                 "per_class": {label: {"train": 270, "val": 33, "test": 50} for label in LABELS},
                 "skipped": 1, "skipped_files": [{"file": "/data/<pets>/cat/broken.jpg",
                                                  "reason": "truncated or corrupt"}],
                 "warnings": ["class '<b>&' has fewer than 300 training pictures"]},
        "history": history_rows(),
        "best_epoch": 5, "stopped_early": True,
        "metrics": {"val": {"accuracy": np.float32(0.9), "loss": 0.3},
                    "test": {"float": {"accuracy": 0.9, "per_class": per_class(float_), "confusion": float_},
                             "int8": {"accuracy": np.float64(133 / 150), "per_class": per_class(int8),
                                      "confusion": int8}}},
        "misclassified": [
            {"file": str(pictures["chelsea <i>.jpg"]), "label": "cat", "predicted": ODD_LABEL, "score": 0.61,
             "model": "int8"},
            {"file": str(pictures["coffee.jpg"]), "label": "coffee", "predicted": "cat", "score": 0.83,
             "model": "int8"},
            {"file": str(pictures["gone.jpg"]), "label": ODD_LABEL, "predicted": "coffee", "score": 0.55,
             "model": "int8"}],
        "edgetpu": {"ops": 63, "tpu": 62, "cpu_ops": {"SOFTMAX": 1}, "parameter_bytes": 4_700_000,
                    "cache_bytes": 4_700_000},
        "files": {"keras": "/out/model.keras", "int8": "/out/model_int8.tflite", "edgetpu": None,
                  "labels": "/out/labels.txt", "report": "/out/train_report.html"},
        "timings": {"scan": 1.0, "features": 20.0, "train": np.float32(2.5), "evaluate": 3.0, "convert": 10.0,
                    "total": 36.5},
        "ensemble": {"members": ["a.tflite", "b.tflite"],
                     "comparison": [{"name": "lite0", "accuracy": 0.887, "latency_ms": 3.1,
                                     "parameter_bytes": 4_700_000, "fits_cache": True},
                                    {"name": "2 x lite0", "accuracy": 0.91, "latency_ms": 6.0,
                                     "parameter_bytes": 9_400_000, "fits_cache": False}]},
        "warnings": ["the int8 model is 1.3 points less accurate than the float one"],
    }


def inline_images(page):
    """[(mime, PIL image)] of every <img> in the page, decoded from its data: URI; fails on any other src."""
    found = []
    for source in re.findall(r"<img src='([^']*)'", page):
        match = re.fullmatch(r"data:(image/(?:png|jpeg));base64,([A-Za-z0-9+/=]+)", source)
        assert match, f"not an inline picture: {source[:60]}"
        found.append((match.group(1), Image.open(io.BytesIO(base64.b64decode(match.group(2)))).convert("RGB")))
    return found


def coloured(pixels):
    """Pixels whose channels differ by more than 60: neither grey, black nor white."""
    rgb = np.asarray(pixels, dtype=int)
    return (rgb.max(axis=-1) - rgb.min(axis=-1)) > 60


def near(pixels, colour, within=40):
    return np.all(np.abs(np.asarray(pixels, dtype=int) - colour) <= within, axis=-1)


# --- train_report.json and .html ------------------------------------------------------------------------

def test_json_round_trips_with_numpy_values_made_plain(document, tmp_path):
    document["history"][2]["val_loss"] = float("nan")  # a diverged epoch: JSON has no NaN
    json_path, html_path = train_report.write(tmp_path / "out", document)
    assert (json_path, html_path) == (str(tmp_path / "out" / "train_report.json"),
                                      str(tmp_path / "out" / "train_report.html"))
    text = Path(json_path).read_text(encoding="utf-8")
    assert "NaN" not in text and text.startswith("{\n  ")  # strict JSON, indented
    loaded = json.loads(text)
    assert loaded == train_report.plain(document)
    assert loaded["metrics"]["test"]["int8"]["confusion"] == [[45, 4, 1], [3, 40, 7], [0, 2, 48]]
    assert loaded["metrics"]["val"]["accuracy"] == pytest.approx(0.9)
    assert loaded["recipe"]["input_size"] == [224, 224]
    assert loaded["history"][2]["val_loss"] is None
    assert loaded["labels"] == LABELS
    # Nothing left behind but the two files: both were written through a temporary and renamed.
    assert sorted(os.listdir(tmp_path / "out")) == ["train_report.html", "train_report.json"]


def test_html_escapes_labels_and_file_names(document):
    page = train_report.to_html(document)
    assert "&lt;b&gt;&amp;" in page and "<b>&" not in page
    assert "chelsea &lt;i&gt;.jpg" in page and "<i>" not in page
    assert "/data/&lt;pets&gt;" in page and "<pets>" not in page
    assert "cat -&gt; &lt;b&gt;&amp; (0.61)" in page  # a thumbnail's caption


def test_html_sections_come_in_order_with_their_figures(document):
    page = train_report.to_html(document)
    headings = re.findall(r"<h[12]>([^<]*)", page)
    assert [h.split(" (")[0].split(":")[0] for h in headings] == [
        "efficientnet-lite0", "Warnings", "Training curves", "Confusion matrices", "Per class",
        "Misclassified test pictures", "Data", "Recipe", "Time per phase", "Ensemble comparison"]
    # Float and int8 test accuracy side by side, the Edge TPU mapping, files, both warning lists.
    assert "<th>test, int8</th><th>test, float</th>" in page
    assert "<td>88.7%</td><td>90.0%</td>" in page
    assert "62 of 63 ops run on the Edge TPU (predicted); on the CPU: SOFTMAX x1" in page and "(fits)" in page
    assert "/out/model_int8.tflite" in page and "<td>edgetpu</td><td>not written</td>" in page
    assert "1.3 points less accurate" in page and "data: class &#x27;&lt;b&gt;&amp;&#x27; has fewer" in page
    assert "best epoch 5" in page and "stopped early" in page
    assert "The int8 model&#x27;s test accuracy is 1.3 points below the float model&#x27;s." in page
    assert "<p>1 file skipped.</p>" in page
    # Per-class precision and recall, int8 (coffee: 40 of 46 said, 40 of 50 true) then float; recipe and timings
    # as people read them.
    assert "<td>coffee</td><td>50</td><td>87.0%</td><td>80.0%</td><td>89.1%</td><td>82.0%</td>" in page
    assert "<td>class weights</td><td>cat 1, coffee 1.25, &lt;b&gt;&amp; 0.8</td>" in page
    assert "<td>input size</td><td>224 x 224</td>" in page and "<td>train</td><td>2.5</td>" in page
    assert "<td>2 x lite0</td><td>91.0%</td><td>6</td><td>8.96 MiB</td><td>no</td>" in page


def test_html_is_self_contained(document):
    page = train_report.to_html(document)
    pictures = inline_images(page)
    # Curves, the int8 and the float confusion matrix (they differ), three thumbnails.
    assert [mime for mime, _ in pictures] == ["image/png"] * 3 + ["image/jpeg"] * 3
    assert pictures[0][1].size == charts.CURVES_SIZE
    assert all(image.size == (charts.THUMBNAIL_SIZE,) * 2 for _, image in pictures[3:])
    assert not re.search(r"(src|href)=(?!'data:)", page)
    # Most confident mistake first; the one whose file has gone is last, as a grey placeholder.
    assert page.index("coffee -&gt; cat (0.83)") < page.index("cat -&gt; &lt;b&gt;&amp; (0.61)")
    gone = np.asarray(pictures[-1][1])
    assert not coloured(gone).any() and near(gone, charts.PLACEHOLDER_GREY, 12).mean() > 0.5
    assert "no such image file" in page


def test_one_confusion_matrix_when_float_and_int8_agree(document):
    document["metrics"]["test"]["float"]["confusion"] = document["metrics"]["test"]["int8"]["confusion"].tolist()
    page = train_report.to_html(document)
    assert page.count("alt='confusion matrix") == 1 and "alt='confusion matrix, int8 model'" in page
    assert "<p>The float model's confusion matrix is the same.</p>" in page


def test_a_document_with_only_the_required_parts(tmp_path):
    document = {"model": "efficientnet-lite0", "task": "classification", "labels": ["a", "b"]}
    json_path, html_path = train_report.write(tmp_path, document)
    page = Path(html_path).read_text(encoding="utf-8")
    assert json.loads(Path(json_path).read_text(encoding="utf-8")) == document
    assert "Edge TPU: not checked." in page and "no epochs recorded" in page and "<img" not in page
    assert "<h2>Warnings</h2><p>none</p>" in page


def test_the_trainers_per_phase_figures(document):
    """The trainer keeps the best epoch of each phase, says per phase whether it stopped early, lists each
    phase's recipe under the main settings, and passes on what edgetpu_compiler did."""
    document.update(best_epoch={"head": 3, "fine-tune": 5}, stopped_early={"head": False, "fine-tune": True},
                    compile={"ran": False, "why": "edgetpu_compiler not found: install it"})
    document["recipe"].update(head={"epochs": 3, "learning_rate": 0.005}, fine_tune=None)
    page = train_report.to_html(document)
    assert ("6 epochs, best epoch of each phase: head 3, fine-tune 5 (the model keeps the last phase&#x27;s best "
            "weights), stopped early in fine-tune.") in page
    assert "<td>head: epochs</td><td>3</td></tr><tr><td>head: learning rate</td><td>0.005</td>" in page
    assert "<td>fine tune</td><td>none</td>" in page
    assert "edgetpu_compiler did not run: edgetpu_compiler not found: install it." in page
    pixels = np.asarray(inline_images(page)[0][1])
    columns = np.nonzero(near(pixels, charts.BEST_COLOUR, 30).sum(axis=0) > 100)[0]
    assert len(columns) >= 4 and columns.max() - columns.min() > charts.CURVES_SIZE[0] / 2  # both panels
    # Two best-epoch lines per panel: their columns form four separate runs.
    assert np.count_nonzero(np.diff(columns) > 1) == 3


def test_thumbnails_are_capped_with_a_note(document):
    item = document["misclassified"][1]
    document["misclassified"] = [dict(item, score=k / 100) for k in range(train_report.MAX_THUMBNAILS + 5)]
    page = train_report.to_html(document)
    assert page.count("<figure") == train_report.MAX_THUMBNAILS
    assert f"The {train_report.MAX_THUMBNAILS} most confident of {train_report.MAX_THUMBNAILS + 5}" in page


def test_an_unwritable_folder_is_one_clear_error(tmp_path, document):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(EdgekitError, match=r"file/out: cannot write the training report there .*choose another"):
        train_report.write(blocker / "out", {"model": "m"})


# --- the pictures ---------------------------------------------------------------------------------------

def test_curves_have_coloured_pixels_in_both_panels(tmp_path):
    out = tmp_path / "curves.png"
    image = charts.training_curves(history_rows(), out_path=out)
    with Image.open(out) as saved:
        assert saved.size == image.size == charts.CURVES_SIZE
    pixels = np.asarray(image)
    plots = pixels[:charts.CURVES_SIZE[1] - 60]  # above the legend
    half = charts.CURVES_SIZE[0] // 2
    for panel in (plots[:, :half], plots[:, half:]):
        for colour in (charts.TRAIN_COLOUR, charts.VALIDATION_COLOUR, charts.BEST_COLOUR, charts.PHASE_COLOUR):
            assert near(panel, colour, 30).sum() > 50, colour
    assert coloured(plots[:, :half]).sum() > 500 and coloured(plots[:, half:]).sum() > 500


def test_curves_mark_the_phase_change_only_when_there_is_one():
    head_only = np.asarray(charts.training_curves(history_rows(head=4, fine_tune=0)))
    assert near(head_only, charts.PHASE_COLOUR, 30).sum() == 0
    assert near(head_only, charts.BEST_COLOUR, 30).sum() > 50  # best: the lowest validation loss


def test_curve_data_reads_the_history():
    rows = history_rows(head=2, fine_tune=2)
    rows[1]["val_loss"] = float("nan")
    rows[3]["val_loss"] = 0.5
    curves = charts.curve_data(rows, best_epoch=3)
    assert curves.epochs == [1, 2, 3, 4] and curves.best == [3]
    assert curves.val_loss[1] is None and curves.phase_starts == [(2.5, "fine-tune")]
    assert charts.curve_data(rows, best_epoch={"head": 1, "fine-tune": 3}).best == [1, 3]
    assert charts.curve_data(rows).best == [3]  # lowest validation loss, the NaN one left out
    no_validation = [dict(row, val_loss=None) for row in rows]
    assert charts.curve_data(no_validation).best == [4]  # training loss, as the trainer watches then
    assert charts.nice_ticks(0.52, 0.93, bounds=(0, 1)).values == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert charts.epoch_ticks(1, 45) == [5, 10, 15, 20, 25, 30, 35, 40, 45]
    assert charts.training_curves([]).size == charts.CURVES_SIZE
    one_epoch = np.asarray(charts.training_curves(history_rows(head=1, fine_tune=0)))
    assert near(one_epoch, charts.TRAIN_COLOUR, 30).sum() > 20  # a single point still shows


def _cell_shade(pixels, layout, row, column):
    """Mean brightness of a cell's top-left quarter, where no count is written."""
    top, left = layout.top + row * layout.cell, layout.left + column * layout.cell
    quarter = max(1, layout.cell // 4)
    return pixels[top + 1: top + 1 + quarter, left + 1: left + 1 + quarter].mean()


@pytest.mark.parametrize("count", [3, 40])
def test_confusion_diagonal_is_darker(count):
    labels = [f"class number {k} with a long name" for k in range(count)]
    labels[1] = "猫 chat"  # not Latin-1: drawn, never an exception
    matrix = np.full((count, count), 1) + np.eye(count, dtype=int) * 100
    matrix[2] = 0  # a class without test pictures: a white row
    image = charts.confusion_matrix_picture(matrix, labels, "int8 model, test pictures")
    layout = charts.confusion_layout(labels)
    assert layout.numbered == (count <= charts.MAX_NUMBERED_CLASSES)
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert image.size[1] == layout.height and image.size[0] >= layout.width
    for row in range(count):
        diagonal = _cell_shade(pixels, layout, row, row)
        for column in {0, 1, count - 1} - {row}:
            if row == 2:
                assert diagonal == _cell_shade(pixels, layout, row, column) == 255
            else:
                assert diagonal < _cell_shade(pixels, layout, row, column) - 100


def test_confusion_writes_counts_in_light_and_dark_cells():
    labels = ["a", "b"]
    image = charts.confusion_matrix_picture([[90, 10], [0, 100]], labels, "float model")
    layout = charts.confusion_layout(labels)
    pixels = np.asarray(image.convert("L"), dtype=int)

    def cell(row, column):
        top, left = layout.top + row * layout.cell, layout.left + column * layout.cell
        return pixels[top + 2: top + layout.cell - 1, left + 2: left + layout.cell - 1]

    assert (cell(0, 0) > 200).sum() > 10  # white digits on the dark diagonal
    assert (cell(0, 1) < 100).sum() > 10  # black digits on a light cell


def test_a_confusion_matrix_that_does_not_match_the_labels_is_one_clear_error():
    with pytest.raises(EdgekitError, match=r"has shape \(2, 2\) but there are 3 labels: give one row and one"):
        charts.confusion_matrix_picture([[1, 0], [0, 1]], ["a", "b", "c"], "int8")


def test_thumbnail_of_a_real_picture_and_a_missing_one(pictures):
    found = charts.thumbnail(pictures["coffee.jpg"])
    assert found.problem is None and found.image.size == (charts.THUMBNAIL_SIZE,) * 2
    assert coloured(np.asarray(found.image)).mean() > 0.2  # the photo, not a placeholder
    missing = charts.thumbnail(pictures["gone.jpg"])
    assert "gone.jpg: no such image file" in missing.problem
    assert missing.image.size == (charts.THUMBNAIL_SIZE,) * 2 and not coloured(np.asarray(missing.image)).any()
    pictures["gone.jpg"].write_bytes(b"\xff\xd8 not really a JPEG")
    assert "not an image file" in charts.thumbnail(pictures["gone.jpg"]).problem
    assert charts.thumbnail(None).problem == "no file recorded"


# --- in a browser ---------------------------------------------------------------------------------------

# Run by the test only, after the page has loaded: writes each picture's decoded width into the page.
def test_chromium_loads_every_picture(document, tmp_path):
    _, html_path = train_report.write(tmp_path / "out", document)
    widths = picture_widths(html_path, tmp_path, "the report's browser test")
    page = Path(html_path).read_text(encoding="utf-8")
    assert widths == [image.width for _, image in inline_images(page)]
    assert len(widths) == 6 and min(widths) > 0


def test_the_head_fitted_to_int8_features_is_reported():
    document = {"model": "m", "task": "classification", "labels": ["a", "b"],
                "head_fitted_to_int8": {"before": [1.2, 0.78], "after": [1.15, 0.79], "kept": True, "epochs": 12}}
    page = train_report.to_html(document)
    assert ("After conversion the head was fitted to the int8 backbone&#x27;s features for 12 epochs: validation "
            "loss 1.2000 -&gt; 1.1500, accuracy 78.0% -&gt; 79.0% on those features (kept, and the model converted "
            "again).") in page
    document["head_fitted_to_int8"] = None
    assert "After conversion" not in train_report.to_html(document)
