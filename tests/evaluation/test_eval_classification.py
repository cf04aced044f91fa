"""`edgekit eval` on Coral's classifiers and photos: accuracy equal to what `edgekit run` says image by
image, agreement with a reference model, several models side by side, workers, the plot."""

import json
import os

import numpy as np
import pytest
from cli_runner import edgekit, run_json
from PIL import Image

from edgekit.cli.cmd_eval import eval_document
from edgekit.evaluation import datasets, evaluate, metrics
from edgekit.runtime.adapters import classify
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.labels import read_label_file
from edgekit.runtime.pipeline import Runner

pytestmark = pytest.mark.usefixtures("no_edgetpu_library")

SMALL = "mobilenet_v1_0.25_128_quant.tflite"
MEDIUM = "mobilenet_v1_0.5_160_quant.tflite"
# Folder names as people write them: any case, underscores, a label's first synonym.
PHOTOS = {"cat.bmp": "egyptian_CAT", "parrot.jpg": "Macaw", "resized_cat.bmp": "tabby"}


@pytest.fixture
def class_folder(tmp_path, coral):
    root = tmp_path / "photos"
    for name, folder in PHOTOS.items():
        (root / folder).mkdir(parents=True)
        os.symlink(coral(name), root / folder / name)
    # A second cat picture (a flipped copy), so a class holds more than one image.
    Image.open(coral("cat.bmp")).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "egyptian_CAT" / "flip.png")
    return root


def expected_accuracy(model, folder, labels):
    """Top-1 and top-5 from `edgekit run`'s own results, one image at a time."""
    top1 = top5 = 0
    samples = datasets.match_classes(datasets.image_folder(folder), read_label_file(labels)).samples
    for sample in samples:
        result = run_json(str(model), [sample.image], device="cpu", labels_path=str(labels), top_k=5,
                            threshold=0.0)["results"][0]
        ids = [c["id"] for c in result["classes"]]
        top1 += ids[0] == sample.target
        top5 += sample.target in ids
    return top1 / len(samples), top5 / len(samples)


def test_labels_match_folders_by_first_synonym_any_case():
    labels = {0: "background", 283: "tiger cat", 281: "tabby, tabby cat", 286: "Egyptian cat"}
    folder = datasets.ClassFolder("x", [datasets.Sample("a.png", "EGYPTIAN_cat"),
                                        datasets.Sample("b.png", "Tabby")],
                                  {"EGYPTIAN_cat": None, "Tabby": None}, False)
    matched = datasets.match_classes(folder, labels)
    assert [s.target for s in matched.samples] == [286, 281]


def test_accuracy_equals_run_image_by_image(class_folder, coral):
    labels = coral("imagenet_labels.txt")
    models = [coral(SMALL), coral(MEDIUM)]
    report = evaluate.evaluate(models, class_folder, labels_path=labels, device="cpu", progress=False)
    assert report.images == 4 and report.classes == 3
    for model, found in zip(models, report.models):
        top1, top5 = expected_accuracy(model, class_folder, labels)
        assert (found.top1, found.top5) == (pytest.approx(top1, abs=1e-6), pytest.approx(top5, abs=1e-6))
        assert found.device == "cpu" and found.latency.n == 4
        assert sum(c.count for c in found.per_class) == 4
    # Coral's expectation: the 0.5/160 model finds the Egyptian cat (286) in cat.bmp.
    medium = report.models[1]
    assert {c.label: c.count for c in medium.per_class}["Egyptian cat"] == 2
    assert medium.top5 >= 0.75


def test_cli_table_json_and_plot(class_folder, coral, tmp_path):
    labels = coral("imagenet_labels.txt")
    plot = tmp_path / "out" / "eval.png"
    result = edgekit("eval", coral(SMALL), coral(MEDIUM), "--data", class_folder, "--labels", labels,
                     "--device", "cpu", "--plot", plot)
    assert result.exit_code == 0, result.stderr
    assert SMALL in result.stdout and MEDIUM in result.stdout and "top-1" in result.stdout
    assert Image.open(plot).size == (960, 420)
    document = json.loads(edgekit("eval", coral(MEDIUM), "--data", class_folder, "--labels", labels,
                                  "--device", "cpu", "--json").stdout)
    assert {"top1", "top5"} <= set(document) and document["top1"] == document["models"][0]["top1"]


def scores_of(model, images):
    runner = Runner(open_model(str(model), device="cpu"))
    rows = []
    for image in images:
        runner.run_image(image)
        rows.append(classify.get_scores(runner.interpreter))
    return np.stack(rows)


def test_agreement_with_a_reference_model(tmp_path, coral):
    flat = tmp_path / "unlabelled"
    flat.mkdir()
    names = ["cat.bmp", "parrot.jpg", "grace_hopper.bmp", "resized_cat.bmp"]
    for name in names:
        os.symlink(coral(name), flat / name)
    report = evaluate.evaluate([coral(SMALL)], flat, reference=coral(MEDIUM), device="cpu", progress=False)
    found = report.models[0]
    images = sorted(str(flat / n) for n in names)
    small, medium = scores_of(coral(SMALL), images), scores_of(coral(MEDIUM), images)
    same = np.mean(small.argmax(axis=1) == medium.argmax(axis=1))
    # Both outputs are uint8 with scale 1/256: a stored 0 stands for under half a step, 1/512, and the
    # zeros of a row share what the row lacks of 1 (row by row, written out plainly).
    def filled(row, floor=1 / 512):
        row = [float(v) for v in row]
        zeros = [i for i, v in enumerate(row) if v == 0]
        share = min(max(max(1 - sum(row), 0) / max(len(zeros), 1), floor / 1000), floor)
        row = [share if i in set(zeros) else v for i, v in enumerate(row)]
        return np.array(row) / sum(row)

    p = np.stack([filled(r) for r in medium])
    q = np.stack([filled(r) for r in small])
    kl = np.mean((p * np.log(p / q)).sum(axis=1))
    assert found.agreement == pytest.approx(same, abs=1e-6)
    assert found.mean_kl == pytest.approx(kl, abs=1e-5) and found.mean_kl > 0
    assert found.top1 is None and report.classes is None  # no classes, no accuracy
    document = eval_document(report)
    assert (document["agreement"], document["mean_kl"]) == (found.agreement, found.mean_kl)
    assert "top1" not in document and "top1" not in document["models"][0] and document["classes"] is None
    # A model agrees with itself completely, with zero divergence.
    same_model = metrics.agreement(small, small)
    assert (same_model.top1, same_model.mean_kl) == (1.0, pytest.approx(0.0, abs=1e-12))


def test_two_workers_give_the_same_figures(class_folder, coral):
    labels = coral("imagenet_labels.txt")
    one = evaluate.evaluate([coral(SMALL)], class_folder, labels_path=labels, device="cpu", progress=False)
    two = evaluate.evaluate([coral(SMALL)], class_folder, labels_path=labels, device="cpu", workers=2,
                            progress=False)
    keep = ("top1", "top5", "per_class", "worst", "confusions")
    assert [getattr(one.models[0], k) for k in keep] == [getattr(two.models[0], k) for k in keep]
    assert two.models[0].workers == 2 and two.models[0].threads >= 1


def test_accuracy_metric_by_hand():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    found = metrics.accuracy(scores, [1, 1, 2, 0])
    assert (found.top1, found.count) == (0.75, 4)
    assert [(c.id, c.count, c.top1) for c in found.per_class] == [(0, 1, 1.0), (1, 2, 0.5), (2, 1, 1.0)]
    assert found.worst[0].id == 1 and found.confusions == [metrics.Confusion(1, 0, 1)]


def test_progress_bar_draws_only_when_asked():
    import io

    from edgekit.progress import Progress

    shown, hidden = io.StringIO(), io.StringIO()
    with Progress(4, "model.tflite", stream=shown, enabled=True) as bar, Progress(4, stream=hidden) as quiet:
        for _ in range(4):
            bar.update()
            quiet.update()
    assert "[" + "#" * 30 + "] 4/4" in shown.getvalue() and shown.getvalue().endswith("\n")
    assert hidden.getvalue() == ""  # a StringIO is no terminal
