"""`edgekit train`'s detection data: COCO, Pascal VOC, YOLO and Model Maker CSV read through eval's own readers
into the same boxes, the splits each format declares, seeded random splits, and one exact line for each thing a
user can get wrong. Every set is written here from scikit-image's photos with hand-made annotation files."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from cli_runner import edgekit
from detection_model import build_detection_model
from picture_sets import photo, write_not_an_image
from PIL import Image

from edgekit import image_folders
from edgekit.evaluation import datasets, metrics
from edgekit.training.labelled_boxes import (BoxDataError, BoxPicture, box_counts, coco_truth, describe_split,
                                             pictures_for, read_boxes)

CLASSES = ["cat", "cup", "person"]
# name: (skimage photo, width, height). The suffix decides JPEG or PNG.
PICTURES = {"chelsea.jpg": ("chelsea", 160, 120), "coffee.png": ("coffee", 200, 150),
            "astronaut.jpg": ("astronaut", 128, 128), "rocket.png": ("rocket", 120, 160)}
# name: [(label, (xmin, ymin, xmax, ymax) in pixels)]; the rocket has no boxes (an empty picture trains too).
TRUTH = {"chelsea.jpg": [("cat", (40, 10, 120, 100))],
         "coffee.png": [("cup", (50, 20, 150, 130)), ("cat", (0, 0, 30, 30))],
         "astronaut.jpg": [("person", (20, 5, 110, 128))],
         "rocket.png": []}
ALL_TRAIN = {"val_split": 0, "test_split": 0}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """{name: path} of the PICTURES, real photos resized to their sizes."""
    folder = tmp_path_factory.mktemp("photos")
    found = {}
    for name, (source, width, height) in PICTURES.items():
        found[name] = str(folder / name)
        Image.fromarray(photo(source)).resize((width, height)).save(found[name])
    return found


def size_of(name):
    return PICTURES[name][1:]


def place(photos, name, folder, as_name=None):
    """Copy the photo `name` into `folder` (as `as_name`); returns the copy's path."""
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, as_name or name)
    shutil.copy(photos[name], target)
    return target


def write_coco(path, truth, photos, picture_folder, categories=CLASSES, crowd=(), sizes=None):
    """A COCO instances file for `truth` ({name: [(label, box)]}, names as PICTURES' or "x/chelsea.jpg" for a copy
    of it) with the pictures copied into `picture_folder`; `crowd`: (name, label) boxes marked iscrowd."""
    images, annotations = [], []
    for k, (name, objects) in enumerate(truth.items()):
        source = os.path.basename(name).split("-")[-1]
        if source in photos:
            place(photos, source, picture_folder, name)
        width, height = (sizes or {})[name] if name in (sizes or {}) else size_of(source)
        images.append({"id": k + 10, "file_name": name, "width": width, "height": height})
        for label, (x0, y0, x1, y1) in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": k + 10,
                                "category_id": categories.index(label) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "iscrowd": int((name, label) in crowd)})
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": k + 1, "name": name} for k, name in enumerate(categories)]}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(document, f, indent=1)
    return str(path)


def voc_xml(name, objects, difficult=()):
    boxes = "".join(f"<object><name>{label}</name><difficult>{int((name, label) in difficult)}</difficult><bndbox>"
                    f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
                    for label, (x0, y0, x1, y1) in objects)
    return f"<annotation>\n<filename>{name}</filename>\n{boxes}\n</annotation>\n"


def write_voc(root, truth, photos, difficult=()):
    for name, objects in truth.items():
        place(photos, name.split("-")[-1], os.path.join(root, "JPEGImages"), name)
        os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
        with open(os.path.join(root, "Annotations", os.path.splitext(name)[0] + ".xml"), "w") as f:
            f.write(voc_xml(name, objects, difficult))
    return str(root)


def yolo_lines(name, objects, names=CLASSES):
    width, height = size_of(name.split("-")[-1])
    return "".join(f"{names.index(label)} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
                   f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}\n" for label, (x0, y0, x1, y1) in objects)


def write_yolo(root, truth, photos, names=CLASSES, split=""):
    for name, objects in truth.items():
        place(photos, name.split("-")[-1], os.path.join(root, "images", split), name)
        os.makedirs(os.path.join(root, "labels", split), exist_ok=True)
        with open(os.path.join(root, "labels", split, os.path.splitext(name)[0] + ".txt"), "w") as f:
            f.write(yolo_lines(name, objects))
    if names:
        with open(os.path.join(root, "classes.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
    return str(root)


def csv_rows(truth, sets=None, four_corners=False, folder="images"):
    """Model Maker CSV rows for `truth`: normalized corners, a set per picture (TRAIN by default)."""
    rows = []
    for name, objects in truth.items():
        width, height = size_of(name.split("-")[-1])
        where = (sets or {}).get(name, "TRAIN") + f",{folder}/{name}"
        for label, (x0, y0, x1, y1) in objects:
            a, b, c, d = x0 / width, y0 / height, x1 / width, y1 / height
            rows.append(f"{where},{label},{a},{b},{c},{b},{c},{d},{a},{d}" if four_corners else
                        f"{where},{label},{a},{b},,,{c},{d},,")
        if not objects:
            rows.append(f"{where},,,,,,,,,")
    return rows


def write_csv_boxes(path, truth, photos, rows=None, **options):
    for name in truth:
        place(photos, name.split("-")[-1], os.path.join(os.path.dirname(path), "images"), name)
    with open(path, "w") as f:
        f.write("\n".join(rows if rows is not None else csv_rows(truth, **options)) + "\n")
    return str(path)


def boxes_of(pictures):
    """{file name: [(class name, (xmin, ymin, xmax, ymax) rounded to 0.01 px, crowd)]}."""
    return {os.path.basename(p.path): [(CLASSES[label], tuple(round(float(v), 2) for v in box), bool(crowd))
                                       for box, label, crowd in zip(p.boxes, p.labels, p.crowd)]
            for p in pictures}


def expected_boxes(truth, crowd=()):
    return {name: [(label, tuple(float(v) for v in box), (name, label) in crowd) for label, box in objects]
            for name, objects in truth.items()}


def raised(call, *args, **kwargs):
    """The message of the BoxDataError call(*args, **kwargs) raises (exit code 2, as the CLI uses)."""
    with pytest.raises(BoxDataError) as caught:
        call(*args, **kwargs)
    assert caught.value.exit_code == 2
    return str(caught.value)


# --- the four formats, one reading ---------------------------------------------------------------------------

def test_the_four_formats_give_the_same_boxes(tmp_path, photos):
    sources = {"coco": write_coco(tmp_path / "coco" / "annotations" / "instances_default.json", TRUTH, photos,
                                  tmp_path / "coco" / "images"),
               "voc": write_voc(tmp_path / "voc", TRUTH, photos),
               "yolo": write_yolo(tmp_path / "yolo", TRUTH, photos),
               "csv": write_csv_boxes(tmp_path / "csv" / "boxes.csv", TRUTH, photos)}
    for kind, source in sources.items():
        found = read_boxes(os.path.dirname(os.path.dirname(source)) if kind == "coco" else source, **ALL_TRAIN)
        assert (found.format, found.class_names, found.val, found.test) == (kind, CLASSES, [], []), kind
        assert (found.clipped, found.dropped, found.warnings) == (0, 0, []), kind
        assert boxes_of(found.train) == expected_boxes(TRUTH), kind
        for picture in found.train:
            assert (picture.width, picture.height) == size_of(os.path.basename(picture.path))
            assert (picture.boxes.dtype, picture.labels.dtype, picture.crowd.dtype) == (np.float32, np.int32, np.bool_)
            assert picture.boxes.shape == (len(picture.labels), 4)
        empty = next(p for p in found.train if p.path.endswith("rocket.png"))
        assert empty.boxes.shape == (0, 4) and len(empty.labels) == 0
        assert describe_split(found.train) == {"pictures": 4, "boxes": 4, "empty": 1}
        assert box_counts(found.train, found.class_names) == {"cat": 2, "cup": 1, "person": 1}


def test_crowd_and_difficult_boxes_are_kept_as_crowd(tmp_path, photos):
    crowd = {("coffee.png", "cat")}
    coco = read_boxes(write_coco(tmp_path / "c" / "instances.json", TRUTH, photos, tmp_path / "c", crowd=crowd),
                      **ALL_TRAIN)
    voc = read_boxes(write_voc(tmp_path / "v", TRUTH, photos, difficult=crowd), **ALL_TRAIN)
    for found in (coco, voc):
        assert boxes_of(found.train) == expected_boxes(TRUTH, crowd)
        assert box_counts(found.train, CLASSES) == {"cat": 1, "cup": 1, "person": 1}
        assert describe_split(found.train) == {"pictures": 4, "boxes": 3, "empty": 1}


def test_coco_truth_is_what_coco_map_scores(tmp_path, photos):
    found = read_boxes(write_voc(tmp_path / "v", TRUTH, photos, difficult={("coffee.png", "cat")}), **ALL_TRAIN)
    images, categories, annotations = coco_truth(found.train, found.class_names)
    assert categories == {1: "cat", 2: "cup", 3: "person"}
    assert images == {k: (p.path, p.width, p.height) for k, p in enumerate(found.train)}
    coffee = next(k for k, p in enumerate(found.train) if p.path.endswith("coffee.png"))
    assert [a for a in annotations if a["image_id"] == coffee] == [
        {"image_id": coffee, "category_id": 2, "bbox": [50.0, 20.0, 100.0, 110.0], "area": 11000.0, "iscrowd": 0},
        {"image_id": coffee, "category_id": 1, "bbox": [0.0, 0.0, 30.0, 30.0], "area": 900.0, "iscrowd": 1}]
    # Every real box found, the crowd region not: pycocotools ignores the crowd box, so mAP is 1; counted as an
    # ordinary box it would be a miss.
    detections = [dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=0.9)
                  for a in annotations if not a["iscrowd"]]
    score = metrics.coco_map(images, categories, annotations, detections)
    assert (score.map, score.map50) == (pytest.approx(1.0), pytest.approx(1.0))
    ordinary = [dict(a, iscrowd=0) for a in annotations]
    assert metrics.coco_map(images, categories, ordinary, detections).map50 < 1.0


def test_csv_four_corner_rows_set_only_rows_and_sets(tmp_path, photos):
    sets = {"chelsea.jpg": "TRAIN", "coffee.png": "VALIDATION", "astronaut.jpg": "UNASSIGNED", "rocket.png": "TEST"}
    rows = csv_rows(TRUTH, sets, four_corners=True)
    assert rows[-1] == "TEST,images/rocket.png,,,,,,,,,"
    rows[-1] = "test,images/rocket.png"  # set and path only: a picture without boxes; sets in any case
    found = read_boxes(write_csv_boxes(tmp_path / "d" / "boxes.csv", TRUTH, photos, rows=rows), test_split=0.5)
    assert [[os.path.basename(p.path) for p in split] for split in (found.train, found.val, found.test)] == [
        ["chelsea.jpg", "astronaut.jpg"], ["coffee.png"], ["rocket.png"]]
    assert boxes_of(found.train + found.val + found.test) == expected_boxes(TRUTH)


def test_eval_reads_a_model_maker_csv(tmp_path, photos):
    # The model of tests/evaluation/test_eval_detection.py: on a 160x120 picture it finds a dog at (0, 0, 80, 60)
    # and a cat at (100, 45, 140, 105), whatever the picture shows. The CSV puts them exactly there.
    model = build_detection_model(tmp_path / "detector.tflite",
                                  [[0.25, 0.25, 0.5, 0.5], [0.5, 0.75, 0.5, 0.25], [0.25, 0.25, 0.5, 0.5],
                                   [0.8, 0.2, 0.2, 0.2]], [[0, 0, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
                                  [[0.1, 0.9], [0.8, 0.05], [0.0, 0.7], [0.2, 0.1]], input_hw=(120, 160))
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    place(photos, "chelsea.jpg", tmp_path / "data")
    (tmp_path / "data" / "boxes.csv").write_text("TEST,chelsea.jpg,dog,0,0,,,0.5,0.5,,\n"
                                                 "TEST,chelsea.jpg,cat,0.625,0.375,,,0.875,0.875,,\n")
    dataset = datasets.detection_set(tmp_path / "data" / "boxes.csv")
    assert (dataset.format, dataset.categories, dataset.splits) == ("csv", {1: "cat", 2: "dog"}, {0: "test"})
    assert [a["bbox"] for a in dataset.annotations] == [[0.0, 0.0, 80.0, 60.0], [100.0, 45.0, 40.0, 60.0]]
    result = edgekit("eval", model, "--data", tmp_path / "data" / "boxes.csv", "--labels", tmp_path / "labels.txt",
                     "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["format"], document["map"], document["map50"]) == ("csv", 1.0, 1.0)


# --- splits ---------------------------------------------------------------------------------------------------

def names(pictures):
    return [os.path.basename(p.path) for p in pictures]


def test_coco_instances_files_declare_the_splits(tmp_path, photos):
    root = tmp_path / "coco"
    parts = {"train": ["chelsea.jpg", "coffee.png"], "val": ["astronaut.jpg"], "test": ["rocket.png"]}
    for split, members in parts.items():
        write_coco(root / "annotations" / f"instances_{split}2017.json", {n: TRUTH[n] for n in members}, photos,
                   root / "images")
    (root / "annotations" / "captions_train2017.json").write_text("{}")  # a COCO download's other files
    found = read_boxes(root)
    assert [names(found.train), names(found.val), names(found.test)] == list(parts.values())
    os.remove(root / "annotations" / "instances_test2017.json")
    found = read_boxes(root, test_split=0.5)  # no test file: half the training pictures, seeded
    assert sorted(names(found.train) + names(found.test)) == ["chelsea.jpg", "coffee.png"]
    assert (len(found.test), names(found.val)) == (1, ["astronaut.jpg"])


def test_voc_image_sets_declare_the_splits(tmp_path, photos):
    truth = {f"{k}-chelsea.jpg": TRUTH["chelsea.jpg"] for k in "abcde"}
    root = write_voc(tmp_path / "voc", truth, photos)
    lists = {"trainval": "a-chelsea\nb-chelsea\nc-chelsea\n", "val": "c-chelsea\n", "test": ""}
    os.makedirs(os.path.join(root, "ImageSets", "Main"))
    for split, text in lists.items():
        with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write(text)
    found = read_boxes(root)
    # test.txt is there and empty: an empty test split, not a share of train.
    assert [names(found.train), names(found.val), found.test] == [["a-chelsea.jpg", "b-chelsea.jpg"],
                                                                   ["c-chelsea.jpg"], []]
    assert found.warnings == [f"{root}: 2 pictures in no ImageSets/Main list left out (first: "
                              f"{os.path.join(root, 'JPEGImages', 'd-chelsea.jpg')}): list them in train.txt, "
                              "val.txt or test.txt to use them"]


def test_yolo_split_folders_declare_the_splits(tmp_path, photos):
    root = tmp_path / "yolo"
    write_yolo(root, {"a-chelsea.jpg": TRUTH["chelsea.jpg"], "b-coffee.png": TRUTH["coffee.png"],
                      "c-astronaut.jpg": TRUTH["astronaut.jpg"]}, photos, split="train")
    write_yolo(root, {"d-coffee.png": [("cup", (10, 10, 60, 60))]}, photos, split="val")
    found = read_boxes(root, test_split=0.34)
    assert names(found.val) == ["d-coffee.png"] and len(found.test) == 1 and len(found.train) == 2
    assert boxes_of(found.val) == {"d-coffee.png": [("cup", (10.0, 10.0, 60.0, 60.0), False)]}
    assert image_folders.yolo_split_folders(root) == {"train": "train", "val": "val"}


def test_random_split_is_seeded_and_stable(tmp_path, photos):
    truth = {f"{k:02d}-chelsea.jpg": TRUTH["chelsea.jpg"] for k in range(20)}
    data = write_csv_boxes(tmp_path / "d" / "boxes.csv", truth, photos, sets={n: "UNASSIGNED" for n in truth})
    first, again, other = (read_boxes(data, seed=seed) for seed in (0, 0, 1))
    assert [len(first.train), len(first.val), len(first.test)] == [16, 2, 2]
    for split in ("train", "val", "test"):
        assert names(getattr(first, split)) == names(getattr(again, split))
        assert names(getattr(first, split)) == sorted(names(getattr(first, split)))  # the data's order kept
    assert names(first.val) + names(first.test) != names(other.val) + names(other.test)
    assert sorted(names(first.train + first.val + first.test)) == sorted(truth)
    no_val = read_boxes(data, val_split=0, test_split=0.1)
    assert (len(no_val.train), no_val.val, len(no_val.test)) == (18, [], 2)


def test_explicit_val_wins_and_maps_onto_the_training_classes(tmp_path, photos):
    data = write_csv_boxes(tmp_path / "d" / "boxes.csv", TRUTH, photos, sets={"coffee.png": "VALIDATION"})
    val = write_voc(tmp_path / "v", {"x-chelsea.jpg": [("CAT", (1, 2, 30, 40))]}, photos)
    found = read_boxes(data, val=val, test_split=0)
    assert boxes_of(found.val) == {"x-chelsea.jpg": [("cat", (1.0, 2.0, 30.0, 40.0), False)]}
    assert names(found.train) == ["chelsea.jpg", "astronaut.jpg", "rocket.png"]
    assert found.warnings == [f"{data}: 1 picture it declares val left out: --val {val} gives the val pictures",
                              f"{data}: no training boxes of class 'cup': the detector cannot learn it"]


def test_all_pictures_of_a_set_for_scoring_a_model(tmp_path, photos):
    # A CSV of only VALIDATION and TEST rows: no training data, but every picture scores a trained model.
    sets = {"chelsea.jpg": "VALIDATION", "coffee.png": "TEST", "astronaut.jpg": "TEST", "rocket.png": "TEST"}
    data = write_csv_boxes(tmp_path / "d" / "boxes.csv", TRUTH, photos, sets=sets)
    assert raised(read_boxes, data).startswith(f"{data}: no training pictures: every picture is declared val or test")
    told = []
    pictures = pictures_for(data, ["person", "cat", "cup", "dog"], on_warning=told.append)
    assert names(pictures) == list(TRUTH) and told == []
    assert [p.labels.tolist() for p in pictures] == [[1], [2, 1], [0], []]
    assert raised(pictures_for, data, ["cat", "cup"]) == (
        f"{data}: evaluation label 'person' is not among the model's classes ('cat', 'cup'): use the model's class "
        "names")


def test_overlapping_val_is_warned(tmp_path, photos):
    data = write_voc(tmp_path / "v", TRUTH, photos)
    found = read_boxes(data, val=data, test_split=0)
    assert found.warnings[-1] == (f"4 val pictures also in the training data (first: "
                                  f"{os.path.join(data, 'JPEGImages', 'astronaut.jpg')}): val scores will look better "
                                  "than they are")


# --- the class list ---------------------------------------------------------------------------------------------

def test_given_classes_fix_the_order(tmp_path, photos):
    data = write_voc(tmp_path / "v", TRUTH, photos)
    (tmp_path / "classes.txt").write_text("Person\n\ncup\ncat\ndog\n")
    for classes in (["Person", "cup", "cat", "dog"], str(tmp_path / "classes.txt")):
        found = read_boxes(data, classes=classes, **ALL_TRAIN)
        assert found.class_names == ["Person", "cup", "cat", "dog"]
        assert box_counts(found.train, found.class_names) == {"Person": 1, "cup": 1, "cat": 2, "dog": 0}
        assert found.warnings == [f"{data}: no training boxes of class 'dog': the detector cannot learn it"]
    message = raised(read_boxes, data, classes=["person", "cat"])
    assert message == (f"{os.path.join(data, 'Annotations', 'coffee.xml')}: label 'cup' is not in the class list "
                       "('person', 'cat'): add it to the class list, or remove its boxes")
    assert raised(read_boxes, data, classes=str(tmp_path / "none.txt")) == (
        f"{tmp_path / 'none.txt'}: no such class list file: give a text file with one class name a line")
    assert raised(read_boxes, data, classes=["cat", "Cat"]) == (
        "the class list: class 'Cat' is given twice ('cat' and 'Cat' name the same class, compared without case): "
        "give each class once")


def test_coco_classes_follow_category_ids(tmp_path, photos):
    path = write_coco(tmp_path / "c" / "instances.json", TRUTH, photos, tmp_path / "c",
                      categories=["person", "cup", "cat"])
    assert read_boxes(path, **ALL_TRAIN).class_names == ["person", "cup", "cat"]


def test_yolo_names_from_data_yaml_or_missing(tmp_path, photos):
    root = write_yolo(tmp_path / "y", TRUTH, photos, names=None)
    found = read_boxes(root, **ALL_TRAIN)
    assert found.class_names == ["class 0", "class 1", "class 2"]
    assert found.warnings == [f"{root}: no classes.txt or data.yaml names the classes: they are called 'class 0' to "
                              f"'class 2': write their names, one a line in id order, in "
                              f"{os.path.join(root, 'classes.txt')}"]
    with open(os.path.join(root, "data.yaml"), "w") as f:
        f.write("path: .\nnames:\n  0: cat\n  1: cup\n  2: person\n")
    assert read_boxes(root, **ALL_TRAIN).class_names == CLASSES
    with open(os.path.join(root, "data.yaml"), "w") as f:
        f.write("names: [cat, cup]\n")
    assert raised(read_boxes, root) == (
        f"{os.path.join(root, 'labels', 'astronaut.txt')}: class id 2 is not among the 2 names of "
        f"{os.path.join(root, 'data.yaml')}: add its name there (one a line, in id order) or fix the label")


# --- bad input: one line each -------------------------------------------------------------------------------------

def test_boxes_outside_are_clipped_and_empty_ones_dropped(tmp_path, photos):
    truth = {"chelsea.jpg": [("cat", (-10, 5, 40, 55)), ("cup", (150, 100, 190, 140)), ("cat", (10, 10, 10, 30)),
                             ("person", (200, 10, 220, 30)), ("cat", (5, 5, 155, 115))]}
    path = write_coco(tmp_path / "c" / "instances.json", truth, photos, tmp_path / "c")
    found = read_boxes(path, **ALL_TRAIN)
    assert (found.clipped, found.dropped) == (2, 2)
    picture = os.path.join(tmp_path, "c", "chelsea.jpg")
    assert found.warnings == [f"{path}: 2 boxes reaching outside their picture clipped to it (first: {picture})",
                              f"{path}: 2 boxes with no area inside their picture dropped (first: {picture})",
                              f"{path}: no training boxes of class 'person': the detector cannot learn it"]
    assert boxes_of(found.train) == {"chelsea.jpg": [("cat", (0.0, 5.0, 40.0, 55.0), False),
                                                     ("cup", (150.0, 100.0, 160.0, 120.0), False),
                                                     ("cat", (5.0, 5.0, 155.0, 115.0), False)]}


def test_coco_sizes_that_differ_from_the_files(tmp_path, photos):
    # The JSON says 320x240, the file is 160x120: boxes stay in the JSON's pixels, fitted to the real picture.
    truth = {"chelsea.jpg": [("cat", (100, 50, 300, 200))]}
    path = write_coco(tmp_path / "c" / "instances.json", truth, photos, tmp_path / "c",
                      sizes={"chelsea.jpg": (320, 240)})
    found = read_boxes(path, **ALL_TRAIN)
    picture = os.path.join(tmp_path, "c", "chelsea.jpg")
    assert (found.train[0].width, found.train[0].height, found.clipped) == (160, 120, 1)
    assert boxes_of(found.train) == {"chelsea.jpg": [("cat", (100.0, 50.0, 160.0, 120.0), False)]}
    assert found.warnings[0] == (f"{path}: 1 picture of another size than the JSON says (first: {picture}: 320x240 in "
                                 "the JSON, 160x120 in the file): boxes are kept as written and clipped to the file's "
                                 "size")


def test_a_label_outside_the_training_classes(tmp_path, photos):
    data = write_voc(tmp_path / "v", TRUTH, photos)
    val = write_voc(tmp_path / "val", {"x-chelsea.jpg": [("dog", (1, 2, 30, 40))]}, photos)
    assert raised(read_boxes, data, val=val) == (
        f"{os.path.join(val, 'Annotations', 'x-chelsea.xml')}: val label 'dog' is not among the training data's "
        "classes ('cat', 'cup', 'person'): use the training data's class names")


def test_annotations_naming_missing_pictures(tmp_path, photos):
    coco = write_coco(tmp_path / "c" / "instances.json", {"chelsea.jpg": TRUTH["chelsea.jpg"], "gone.jpg": []},
                      photos, tmp_path / "c", sizes={"gone.jpg": (10, 10)})
    message = raised(read_boxes, coco)
    assert message.startswith(f"{coco}: image gone.jpg not found (looked in ")
    voc = write_voc(tmp_path / "v", TRUTH, photos)
    (tmp_path / "v" / "Annotations" / "gone.xml").write_text(voc_xml("gone.jpg", TRUTH["chelsea.jpg"]))
    assert raised(read_boxes, voc).startswith(f"{os.path.join(voc, 'Annotations', 'gone.xml')}: image gone.jpg not "
                                              "found (looked in ")
    rows = csv_rows(TRUTH) + ["TEST,images/gone.jpg,cat,0.1,0.1,,,0.2,0.2,,"]
    data = write_csv_boxes(tmp_path / "d" / "boxes.csv", TRUTH, photos, rows=rows)
    assert raised(read_boxes, data) == (f"{data}:6: picture {tmp_path / 'd' / 'images' / 'gone.jpg'} not found: "
                                        "paths are relative to the CSV file's folder, or absolute")
    yolo = write_yolo(tmp_path / "y", TRUTH, photos)
    (tmp_path / "y" / "labels" / "gone.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert raised(read_boxes, yolo) == (f"{os.path.join(yolo, 'labels', 'gone.txt')}: labels of a picture that is "
                                        f"not in {os.path.join(yolo, 'images')} (1 label file like it): add the "
                                        "picture (same name, an image suffix) or remove the label file")


def test_malformed_annotation_files_name_file_and_line(tmp_path, photos):
    coco = write_coco(tmp_path / "c" / "instances.json", TRUTH, photos, tmp_path / "c")
    text = open(coco).read().splitlines()
    assert text[3] == '   "id": 10,'
    text[3] += ","  # a second comma after the first image's id, on the file's fourth line
    open(coco, "w").write("\n".join(text))
    assert raised(read_boxes, coco) == (f"{coco}: malformed COCO JSON (Expecting property name enclosed in double "
                                        "quotes: line 4 column 13 (char 31)); it must be COCO instances JSON with "
                                        "'images', 'annotations' and 'categories' lists")
    voc = write_voc(tmp_path / "v", TRUTH, photos)
    (tmp_path / "v" / "Annotations" / "coffee.xml").write_text("<annotation>\n<filename>coffee.png</filename>\n"
                                                               "<object><name>cup</name>\n</annotation>\n")
    assert raised(read_boxes, voc) == (f"{os.path.join(voc, 'Annotations', 'coffee.xml')}: malformed Pascal VOC XML "
                                       "(mismatched tag: line 4, column 2); each <object> needs <name> and <bndbox> "
                                       "with xmin, ymin, xmax, ymax")
    yolo = write_yolo(tmp_path / "y", TRUTH, photos)
    (tmp_path / "y" / "labels" / "coffee.txt").write_text("1 0.5 0.5 0.2 0.2\n\n0 0.5 0.5 0.2\n")
    assert raised(read_boxes, yolo) == (f"{os.path.join(yolo, 'labels', 'coffee.txt')}:3: malformed YOLO label line "
                                        "'0 0.5 0.5 0.2'; each line must be `class x_center y_center width height` "
                                        "with the four numbers normalized to 0..1")
    form = ("write SET,path,label,x_min,y_min,,,x_max,y_max,, with SET one of TRAIN, VALIDATION, TEST or UNASSIGNED "
            "and the corners normalized to 0..1 (or SET,path,,,,,,,,, for a picture without boxes)")
    bad_rows = {"TRAINING,images/chelsea.jpg,cat,0.1,0.1,,,0.2,0.2,,": "CSV row (set 'TRAINING')",
                "TRAIN,images/chelsea.jpg,cat,0.1,0.1,,,0.2,,,": "CSV row (corners are neither "
                                                                 "x_min,y_min,,,x_max,y_max,, nor four x,y vertices)",
                "TRAIN,images/chelsea.jpg,cat,12,10,,,200,100,,": "CSV row (corners must be fractions of the "
                                                                  "picture's size, 0..1)",
                "TRAIN,images/chelsea.jpg,,0.1,0.1,,,0.2,0.2,,": "CSV row (a label needs its box corners, and "
                                                                 "corners their label)",
                "TRAIN,images/chelsea.jpg,cat,a,0.1,,,0.2,0.2,,": "CSV row (could not convert string to float: 'a')"}
    for row, what in bad_rows.items():
        data = write_csv_boxes(tmp_path / "d" / "boxes.csv", TRUTH, photos, rows=csv_rows(TRUTH)[:2] + [row])
        assert raised(read_boxes, data) == f"{data}:3: malformed {what}; {form}"


def test_a_dataset_without_boxes(tmp_path, photos):
    empty = {name: [] for name in TRUTH}
    coco = write_coco(tmp_path / "c" / "instances.json", empty, photos, tmp_path / "c")
    assert raised(read_boxes, coco) == (f"{coco}: no boxes in its 4 pictures: a detector learns from boxes: annotate "
                                        "the objects in its COCO annotations")
    data = write_csv_boxes(tmp_path / "d" / "boxes.csv", TRUTH, photos,
                           rows=["TRAIN,images/chelsea.jpg,cat,1.5,0.1,,,1.9,0.5,,"])
    assert raised(read_boxes, data) == (f"{data}: no boxes in its 1 picture, all 1 box having no area inside their "
                                        "picture: a detector learns from boxes: annotate the objects in its Model "
                                        "Maker CSV annotations")


def test_a_folder_mixing_formats(tmp_path, photos):
    root = tmp_path / "mixed"
    write_voc(root, TRUTH, photos)
    write_yolo(root, TRUTH, photos)
    write_coco(root / "annotations" / "instances_default.json", TRUTH, photos, root / "images")
    assert image_folders.dataset_kinds(root) == ["voc", "yolo", "coco"]
    assert raised(read_boxes, root) == (f"{root}: mixes detection formats: Pascal VOC (Annotations/ or JPEGImages/), "
                                        "YOLO (labels/), COCO (an annotation .json): keep one format per folder, or "
                                        "give the COCO .json file itself")
    # eval keeps reading such a folder as its first layout, as calibration does.
    assert image_folders.dataset_kind(root) == "voc" and datasets.detection_set(root).format == "voc"
    assert image_folders.dataset_kinds(tmp_path) == [] and image_folders.dataset_kind(tmp_path) is None


def test_paths_that_are_no_detection_data(tmp_path, photos):
    assert raised(read_boxes, tmp_path / "nowhere") == (
        f"{tmp_path / 'nowhere'}: no such detection data: give a COCO folder or .json file, a Pascal VOC folder "
        "(Annotations/*.xml and JPEGImages/), a YOLO folder (images/, labels/*.txt and classes.txt) or a Model Maker "
        ".csv file")
    place(photos, "chelsea.jpg", tmp_path / "plain")
    assert raised(read_boxes, tmp_path / "plain").startswith(f"{tmp_path / 'plain'}: no detection annotations found")
    root = tmp_path / "coco"
    for name in ("a.json", "b.json"):
        write_coco(root / name, TRUTH, photos, root)
    assert raised(read_boxes, root) == (f"{root}: several annotation files (a.json, b.json): name them "
                                        "instances_train.json, instances_val.json and instances_test.json to use them "
                                        "as those splits, or give the one to use as --data FILE.json")


def test_unreadable_pictures_are_skipped_when_few(tmp_path, photos):
    truth = dict(TRUTH, **{"broken.jpg": [("cat", (1, 1, 20, 20))]})
    rows = csv_rows(TRUTH) + ["TRAIN,images/broken.jpg,cat,0.1,0.1,,,0.2,0.2,,"]
    data = write_csv_boxes(tmp_path / "d" / "boxes.csv", TRUTH, photos, rows=rows)
    broken = write_not_an_image(tmp_path / "d" / "images" / "broken.jpg")
    found = read_boxes(data, **ALL_TRAIN)
    assert names(found.train) == list(TRUTH)
    assert found.warnings[0].startswith(f"{data}: 1 of 5 pictures skipped as unreadable (first: {broken}: not an "
                                        "image file Pillow can read (")
    rows = [f"TRAIN,images/{k}-broken.jpg,,,,,,,,," for k in range(4)] + csv_rows({"chelsea.jpg": truth["broken.jpg"]})
    for k in range(4):
        write_not_an_image(tmp_path / "d" / "images" / f"{k}-broken.jpg")
    data = write_csv_boxes(tmp_path / "d" / "boxes.csv", TRUTH, photos, rows=rows)
    assert raised(read_boxes, data).startswith(f"{data}: 4 of its 5 pictures cannot be read (first: "
                                               f"{tmp_path / 'd' / 'images' / '0-broken.jpg'}: not an image file")


def test_too_few_pictures_to_split_and_bad_options(tmp_path, photos):
    data = write_voc(tmp_path / "v", {"chelsea.jpg": TRUTH["chelsea.jpg"], "coffee.png": TRUTH["coffee.png"]}, photos)
    assert raised(read_boxes, data) == (f"{data}: 2 training pictures, too few to split off val and test: that needs "
                                        "at least 3: add pictures, give --val/--test data, or set "
                                        "--val-split/--test-split to 0")
    assert raised(read_boxes, data, val_split=0.6, test_split=0.4) == (
        "--val-split 0.6 and --test-split 0.4 leave nothing to train on: make their sum less than 1")
    assert raised(read_boxes, data, seed=-1) == "--seed must be a whole number of at least 0, not -1"
    found = read_boxes(data, val_split=0.5, test_split=0)
    assert (len(found.train), len(found.val), found.test) == (1, 1, [])


def test_no_tensorflow_is_imported():
    code = ("import sys, edgekit.training.labelled_boxes; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert BoxPicture._fields == ("path", "width", "height", "boxes", "labels", "crowd")
