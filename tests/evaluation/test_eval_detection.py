"""Detection mAP: a real TFLite_Detection_PostProcess model with known boxes, scored against hand-checked
ground truth in COCO, YOLO and Pascal VOC form; the figures must equal pycocotools' own."""

import contextlib
import io
import json

import pytest
from detection_model import build_detection_model
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edgekit.cli.cmd_eval import eval_document
from edgekit.evaluation import evaluate

# The model of tests/runtime/test_detect.py: on a 160x120 image it finds class 1 ("dog") at
# (0, 0, 80, 60) with score 0.9 and class 0 ("cat") at (100, 45, 140, 105) with score 0.8, whatever the
# picture shows (its inputs are constants).
ANCHORS = [[0.25, 0.25, 0.5, 0.5], [0.5, 0.75, 0.5, 0.25], [0.25, 0.25, 0.5, 0.5], [0.8, 0.2, 0.2, 0.2]]
ENCODINGS = [[0, 0, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
SCORES = [[0.1, 0.9], [0.8, 0.05], [0.0, 0.7], [0.2, 0.1]]
SIZE = (160, 120)
DETECTIONS = [("dog", 0.9, [0, 0, 80, 60]), ("cat", 0.8, [100, 45, 40, 60])]  # COCO [x, y, w, h]
# Image a: both objects exactly where the model puts them. Image b: the dog box is shorter (IoU 2/3 with
# the detection: a hit below IoU 0.7, a miss above) and the cat is elsewhere (a miss and a false alarm).
TRUTH = {"a.png": [("dog", [0, 0, 80, 60]), ("cat", [100, 45, 40, 60])],
         "b.png": [("dog", [0, 0, 80, 40]), ("cat", [10, 70, 30, 30])]}
# By hand (COCO's 101-point interpolation): the cat has one hit then one false alarm at the same score,
# AP = 51/101 at every IoU; the dog has AP 1 up to IoU 0.65 and 51/101 from 0.7 on.
HALF = 51 / 101
MAP50 = (1 + HALF) / 2
MAP = ((4 * 1 + 6 * HALF) / 10 + HALF) / 2


@pytest.fixture
def detector(tmp_path):
    model = build_detection_model(tmp_path / "detector.tflite", ANCHORS, ENCODINGS, SCORES, input_hw=SIZE[::-1])
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    return model, labels


def pictures(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", SIZE, (40 * i, 90, 160)).save(folder / name)


def coco_file(path, truth, category_ids):
    images = [{"id": i + 1, "file_name": name, "width": SIZE[0], "height": SIZE[1]}
              for i, name in enumerate(truth)]
    annotations = [{"image_id": i + 1, "category_id": category_ids[label], "bbox": box, "area": box[2] * box[3],
                    "iscrowd": 0} for i, objects in enumerate(truth.values()) for label, box in objects]
    annotations = [dict(a, id=n + 1) for n, a in enumerate(annotations)]  # ids unique over the file
    categories = [{"id": c, "name": name} for name, c in category_ids.items()]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def pycocotools_map(annotation_file, category_ids, image_count):
    """What pycocotools says, straight from the file, for the detections the model makes on every image."""
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotation_file))
        results = truth.loadRes([{"image_id": i + 1, "category_id": category_ids[label], "bbox": box,
                                  "score": score} for i in range(image_count) for label, score, box in DETECTIONS])
        evaluator = COCOeval(truth, results, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[0], evaluator.stats[1]


def test_map_of_perfect_detections_is_one(tmp_path, detector):
    model, labels = detector
    pictures(tmp_path / "data", ["a.png"])
    coco_file(tmp_path / "data" / "instances.json", {"a.png": TRUTH["a.png"]}, {"dog": 1, "cat": 2})
    report = evaluate.evaluate([model], tmp_path / "data", labels_path=labels, device="cpu", progress=False)
    found = report.models[0]
    assert (found.map, found.map50) == (1.0, 1.0)
    assert report.format == "coco" and found.detections == 2
    # One model: its headline figures at the top level of the JSON too.
    document = eval_document(report)
    assert (document["map"], document["map50"]) == (1.0, 1.0) and document["models"][0]["detections"] == 2


def test_coco_map_equals_pycocotools(tmp_path, detector):
    model, labels = detector
    ids = {"dog": 1, "cat": 2}  # not the model's ids (cat 0, dog 1): matched by name
    pictures(tmp_path / "data" / "images", list(TRUTH))
    annotations = coco_file(tmp_path / "data" / "annotations.json", TRUTH, ids)
    found = evaluate.evaluate([model], annotations, labels_path=labels, device="cpu", progress=False).models[0]
    reference = pycocotools_map(annotations, ids, len(TRUTH))
    assert found.map == pytest.approx(reference[0], abs=1e-6)
    assert found.map50 == pytest.approx(reference[1], abs=1e-6)
    assert (found.map, found.map50) == (pytest.approx(MAP, abs=1e-6), pytest.approx(MAP50, abs=1e-6))


def test_yolo_and_voc_give_the_same_map(tmp_path, detector):
    model, labels = detector
    yolo = tmp_path / "yolo"
    pictures(yolo / "images", list(TRUTH))
    (yolo / "labels").mkdir()
    (yolo / "classes.txt").write_text("dog\ncat\n")
    for name, objects in TRUTH.items():
        lines = [f"{['dog', 'cat'].index(label)} {(x + w / 2) / SIZE[0]} {(y + h / 2) / SIZE[1]} "
                 f"{w / SIZE[0]} {h / SIZE[1]}" for label, (x, y, w, h) in objects]
        (yolo / "labels" / name.replace(".png", ".txt")).write_text("\n".join(lines) + "\n")
    voc = tmp_path / "voc"
    pictures(voc / "JPEGImages", list(TRUTH))
    (voc / "Annotations").mkdir()
    for name, objects in TRUTH.items():
        boxes = "".join(f"<object><name>{label}</name><difficult>0</difficult><bndbox><xmin>{x}</xmin>"
                        f"<ymin>{y}</ymin><xmax>{x + w}</xmax><ymax>{y + h}</ymax></bndbox></object>"
                        for label, (x, y, w, h) in objects)
        (voc / "Annotations" / name.replace(".png", ".xml")).write_text(
            f"<annotation><filename>{name}</filename>{boxes}</annotation>")
    for folder, kind in ((yolo, "yolo"), (voc, "voc")):
        report = evaluate.evaluate([model], folder, labels_path=labels, device="cpu", progress=False)
        assert report.format == kind and report.annotations == 4
        assert report.models[0].map == pytest.approx(MAP, abs=1e-6)
        assert report.models[0].map50 == pytest.approx(MAP50, abs=1e-6)
