"""Evaluation data as people keep it, read into small namedtuples.

- classification: an image folder, one subfolder per class, matched to the model's labels by name;
  a flat folder (no class subfolders) serves the agreement mode, which needs no labels;
- detection: COCO JSON, YOLO txt (images/ + labels/), Pascal VOC XML (Annotations/ + JPEGImages/) or TFLite
  Model Maker's object-detector CSV, all turned into one COCO-style ground truth so pycocotools scores every
  format the same way (and `edgekit train` reads the same sets through these same readers);
- segmentation: images/ + masks/ (or VOC's JPEGImages/ + SegmentationClass/), paired by file stem.

Every problem a user can fix is an EdgekitError naming the file and what to do.
"""

import csv
import json
import os
import re
import xml.etree.ElementTree as ElementTree
from collections import namedtuple
from pathlib import Path

import numpy as np
from PIL import Image

from edgekit import image_folders
from edgekit.errors import EdgekitError

# For messages: what counts as an image, from the one list calibration uses too.
_SUFFIXES_TEXT = ", ".join(image_folders.IMAGE_SUFFIXES)
# Pascal VOC marks object boundaries and "don't care" pixels with 255 in its masks.
IGNORE_ID = 255

Sample = namedtuple("Sample", "image target")
"""One image and what it should give: a class id, an image id (detection) or a mask path."""
ClassFolder = namedtuple("ClassFolder", "root samples classes unlabelled")
"""Image-folder data: samples with class ids (None when flat), {folder: class id}, and whether flat."""
DetectionSet = namedtuple("DetectionSet", "root format samples images categories annotations splits "
                          "annotation_files unreadable", defaults=(None, None, ()))
"""Detection ground truth in COCO terms: images {id: (file, width, height)}, categories {id: name},
annotations [dict(image_id, category_id, bbox [x, y, w, h], area, iscrowd)]. Sample.target = image id.
splits: None when the data declares no train / val / test split, else {image id: "train", "val", "test" or
None (declared nowhere)}; annotation_files: {image id: the file its boxes are written in, None when there is
none (a YOLO picture without a label file)}; unreadable: [(picture, reason)] left out by `skip_unreadable`."""
MaskSet = namedtuple("MaskSet", "root samples")
"""Segmentation data: Sample.target is the path of the mask image (class id per pixel)."""


def label_key(name):
    """How a label or folder name is compared: its first synonym of a comma list, case-insensitive,
    underscores as spaces ("Egyptian cat", "egyptian_cat" and "EGYPTIAN CAT, x" all match)."""
    first = str(name).split(",")[0].replace("_", " ")
    return " ".join(first.split()).casefold()


def label_index(labels):
    """{label key: class id}; when two ids share a name (ImageNet has two "crane"s) the first wins."""
    index = {}
    for class_id in sorted(labels):
        index.setdefault(label_key(labels[class_id]), class_id)
    return index


def list_images(folder):
    """Image files under `folder` (recursively, in `image_folders.list_images`' stable order), as Paths."""
    return [Path(p) for p in image_folders.list_images(folder)]


def _existing_folder(root):
    root = Path(root)
    if not root.exists():
        raise EdgekitError(f"{root}: no such data folder")
    if not root.is_dir():
        raise EdgekitError(f"{root}: not a folder; give a folder of images (one subfolder per class)")
    return root


def image_folder(root):
    """Read a class folder tree without labels yet: ClassFolder with targets still None."""
    root = _existing_folder(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and list_images(d))
    if classes:
        samples = [Sample(str(p), name) for name in classes for p in list_images(root / name)]
        return ClassFolder(str(root), samples, {name: None for name in classes}, False)
    samples = [Sample(str(p), None) for p in list_images(root)]
    if not samples:
        raise EdgekitError(f"{root}: no images ({_SUFFIXES_TEXT}) in this folder or below; put one "
                           "subfolder of images per class in it")
    return ClassFolder(str(root), samples, {}, True)


def match_classes(folder, labels, labels_name="the labels"):
    """The folder with each class name replaced by the model's class id (matched by `label_key`).

    Folders matching no label are refused, naming them: a silently dropped class would inflate accuracy.
    """
    index = label_index(labels)
    ids = {name: index.get(label_key(name)) for name in folder.classes}
    unmatched = [name for name, class_id in ids.items() if class_id is None]
    if unmatched:
        shown = ", ".join(repr(n) for n in unmatched[:8]) + (", ..." if len(unmatched) > 8 else "")
        raise EdgekitError(f"{folder.root}: {len(unmatched)} of {len(ids)} class folders match no label in "
                           f"{labels_name}: {shown}; rename them after a label (the first name of a comma "
                           "list, any case) or pass the right --labels")
    samples = [Sample(s.image, ids[s.target]) for s in folder.samples]
    return folder._replace(samples=samples, classes=ids)


# --- detection -------------------------------------------------------------------------------------

def _malformed(path, what, fix):
    return EdgekitError(f"{path}: malformed {what}; {fix}")


def detection_set(root):
    """Find and read the annotations under `root` (a folder, a COCO .json or a Model Maker .csv file).

    A folder holding several layouts (see `image_folders.dataset_kinds`) is read as the first of them."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".json":
        return read_coco(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        return read_csv_boxes(root)
    root = _existing_folder(root)
    kind = image_folders.dataset_kind(root)
    if kind == "voc":
        return read_voc(root)
    if kind == "yolo":
        return read_yolo(root)
    found = image_folders.coco_annotation_files(root)
    if len(found) == 1:
        return read_coco(found[0], root)
    if len(found) > 1:
        raise EdgekitError(f"{root}: several annotation files ({', '.join(Path(p).name for p in found[:4])}); "
                           "give the one to use as --data FILE.json")
    raise EdgekitError(f"{root}: no detection annotations found: give a COCO .json, a Model Maker .csv, a YOLO "
                       "folder (images/ and labels/*.txt) or a Pascal VOC folder (Annotations/*.xml and "
                       "JPEGImages/)")


def _image_file(name, folders, annotations_path):
    found = image_folders.find_picture(name, folders)
    if found:
        return Path(found)
    raise EdgekitError(f"{annotations_path}: image {name} not found (looked in "
                       f"{', '.join(str(f) for f in folders)}); put the images beside the annotations or in "
                       "images/")


def read_coco(path, root=None):
    """A COCO instances file: images, categories and bbox annotations (segmentations are ignored)."""
    path = Path(path)
    root = Path(root) if root else path.parent
    fix = "it must be COCO instances JSON with 'images', 'annotations' and 'categories' lists"
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _malformed(path, f"COCO JSON ({str(e).splitlines()[0]})", fix) from None
    if not isinstance(document, dict) or not all(isinstance(document.get(k), list)
                                                 for k in ("images", "annotations", "categories")):
        raise _malformed(path, "COCO annotations (missing 'images', 'annotations' or 'categories')", fix)
    folders = image_folders.coco_picture_folders(path, root)
    try:
        categories = {int(c["id"]): str(c["name"]) for c in document["categories"]}
        images, samples = {}, []
        for entry in document["images"]:
            image_id = int(entry["id"])
            file = _image_file(entry["file_name"], folders, path)
            images[image_id] = (str(file), int(entry["width"]), int(entry["height"]))
            samples.append(Sample(str(file), image_id))
        annotations = []
        for entry in document["annotations"]:
            x, y, w, h = (float(v) for v in entry["bbox"])
            if entry["image_id"] not in images or int(entry["category_id"]) not in categories:
                raise ValueError(f"annotation {entry.get('id')} names an unknown image or category")
            annotations.append({"image_id": int(entry["image_id"]), "category_id": int(entry["category_id"]),
                                "bbox": [x, y, w, h], "area": float(entry.get("area", w * h)),
                                "iscrowd": int(entry.get("iscrowd", 0))})
    except (KeyError, TypeError, ValueError) as e:
        detail = f"missing key {e}" if isinstance(e, KeyError) else str(e)
        raise _malformed(path, f"COCO annotations ({detail})", fix) from None
    return DetectionSet(str(root), "coco", samples, images, categories, annotations,
                        annotation_files={image_id: str(path) for image_id in images})


def yolo_names_file(root):
    """The file a YOLO folder names its classes in (classes.txt, obj.names, *.names, data.yaml, dataset.yaml,
    the first there is), or None."""
    root = Path(root)
    for name in ("classes.txt", "obj.names", *sorted(p.name for p in root.glob("*.names")), "data.yaml",
                 "dataset.yaml"):
        if (root / name).is_file():
            return root / name
    return None


def yolo_names(root):
    """Class names of a YOLO folder {class id: name}, from `yolo_names_file` ({} without one)."""
    path = yolo_names_file(root)
    if path is None:
        return {}
    if path.suffix == ".yaml":
        return _yaml_names(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return {i: line.strip() for i, line in enumerate(lines) if line.strip()}


def _yaml_names(path):
    """`names:` of an Ultralytics data.yaml, as a [a, b] list or an indented `N: name` map (no YAML
    library: these two shapes are all the format uses)."""
    text = path.read_text(encoding="utf-8-sig")
    inline = re.search(r"^names:\s*\[(.*?)\]", text, re.M | re.S)
    if inline:
        names = [n.strip().strip("'\"") for n in inline.group(1).split(",") if n.strip()]
        return dict(enumerate(names))
    block = re.search(r"^names:\s*\n((?:[ \t]+.*\n?)+)", text, re.M)
    names = {}
    for line in (block.group(1).splitlines() if block else []):
        pair = re.match(r"\s*(?:(\d+)\s*:|-)\s*(.+)", line)
        if pair:
            names[int(pair.group(1)) if pair.group(1) else len(names)] = pair.group(2).strip().strip("'\"")
    return names


def yolo_label_file(root, image_root, image):
    """Where a YOLO folder keeps the labels of `image`: labels/ mirrors the picture root (images/X.jpg ->
    labels/X.txt, images/train/X.jpg -> labels/train/X.txt)."""
    return Path(root) / "labels" / Path(image).relative_to(image_root).with_suffix(".txt")


def orphan_yolo_labels(root):
    """The label files of a YOLO folder that hold boxes for no picture (no images/X.* beside labels/X.txt);
    a classes.txt kept in labels/ (as labelImg writes it) is no label file."""
    root = Path(root)
    image_root = Path(image_folders.picture_root(root, "yolo"))
    expected = {yolo_label_file(root, image_root, image) for image in list_images(image_root)}
    found = sorted(p for p in (root / "labels").rglob("*.txt") if p.name != "classes.txt" and p not in expected)
    return [p for p in found if p.read_text(encoding="utf-8-sig", errors="replace").strip()]


def read_yolo(root, skip_unreadable=False):
    """YOLO txt: labels/X.txt holds `class xc yc w h` per object, normalized to the image of images/X.*.

    Pictures in images/train, images/val, images/test (see `image_folders.yolo_split_folders`) are declared
    in that split. `skip_unreadable`: a picture Pillow cannot open is left out and listed, not an error."""
    root = Path(root)
    image_root = Path(image_folders.picture_root(root, "yolo"))
    names = yolo_names(root)
    split_folders = image_folders.yolo_split_folders(root)
    samples, images, annotations, seen = [], {}, [], set()
    splits, files, unreadable = {}, {}, []
    for image in list_images(image_root):
        label_file = yolo_label_file(root, image_root, image)
        image_id = _admitted(image, images, samples, skip_unreadable, unreadable)
        if image_id is None:
            continue
        _, width, height = images[image_id]
        parts = image.relative_to(image_root).parts
        splits[image_id] = split_folders.get(parts[0]) if len(parts) > 1 else None
        files[image_id] = str(label_file) if label_file.is_file() else None
        if not label_file.is_file():
            continue  # YOLO's convention: no label file means no objects
        for number, line in enumerate(label_file.read_text(encoding="utf-8-sig").splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split()
            try:
                class_id, xc, yc, w, h = int(fields[0]), *(float(v) for v in fields[1:5])
                if len(fields) != 5 or min(xc, yc, w, h) < 0 or max(xc, yc, w, h) > 1.0001:
                    raise ValueError
            except (ValueError, IndexError):
                raise _malformed(f"{label_file}:{number}", f"YOLO label line {line.strip()!r}",
                                 "each line must be `class x_center y_center width height` with the four "
                                 "numbers normalized to 0..1") from None
            seen.add(class_id)
            box = [(xc - w / 2) * width, (yc - h / 2) * height, w * width, h * height]
            annotations.append({"image_id": image_id, "category_id": class_id, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
    if not samples and not unreadable:
        raise EdgekitError(f"{image_root}: no images ({_SUFFIXES_TEXT}) for the YOLO labels")
    categories = {i: names.get(i, f"class {i}") for i in sorted(set(names) | seen)}
    return DetectionSet(str(root), "yolo", samples, images, categories, annotations,
                        splits if split_folders else None, files, unreadable)


def _voc_listed(root):
    """{image id (the annotation file's stem): split} from a VOC folder's ImageSets/Main lists, later lists
    winning (see `image_folders.VOC_SPLIT_LISTS`); ids naming no annotation file are simply never looked up."""
    listed = {}
    for split, path in image_folders.voc_split_lists(root):
        for line in Path(path).read_text(encoding="utf-8-sig", errors="replace").splitlines():
            if line.split():
                listed[line.split()[0]] = split
    return listed


def read_voc(root, skip_unreadable=False):
    """Pascal VOC: Annotations/X.xml per image, objects with name and bndbox; `difficult` objects count
    as crowd regions, which COCO's evaluation neither rewards nor penalizes, as VOC's own metric does.

    ImageSets/Main/{trainval,train,val,test}.txt, where present, declare each picture's split.
    `skip_unreadable`: a picture Pillow cannot open is left out and listed, not an error."""
    root = Path(root)
    folders = image_folders.picture_folders(root, "voc")
    listed = _voc_listed(root)
    samples, images, annotations, names = [], {}, [], {}
    splits, files, unreadable = {}, {}, []
    for xml in sorted((root / "Annotations").glob("*.xml")):
        try:
            tree = ElementTree.parse(xml).getroot()
            file = tree.findtext("filename") or xml.stem + ".jpg"
            objects = [(o.findtext("name").strip(), int(float(o.findtext("difficult") or 0)),
                        [float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
                       for o in tree.iter("object")]
        except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as e:
            detail = str(e).splitlines()[0] if str(e) else "an object without name or bndbox"
            raise _malformed(xml, f"Pascal VOC XML ({detail})",
                             "each <object> needs <name> and <bndbox> with xmin, ymin, xmax, ymax") from None
        image = _image_file(file, folders, xml)
        image_id = _admitted(image, images, samples, skip_unreadable, unreadable)
        if image_id is None:
            continue
        splits[image_id] = listed.get(xml.stem)
        files[image_id] = str(xml)
        for name, difficult, (x0, y0, x1, y1) in objects:
            category = names.setdefault(label_key(name), (len(names) + 1, name))[0]
            box = [x0, y0, x1 - x0, y1 - y0]
            annotations.append({"image_id": image_id, "category_id": category, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": difficult})
    if not samples and not unreadable:
        raise EdgekitError(f"{root / 'Annotations'}: no .xml annotation files")
    categories = {category: name for category, name in names.values()}
    declared = bool(image_folders.voc_split_lists(root))
    return DetectionSet(str(root), "voc", samples, images, categories, annotations,
                        splits if declared else None, files, unreadable)


# TFLite Model Maker's object-detector CSV (Google Cloud AutoML Vision's import format): one row per box, or
# one row with empty label and corners for a picture without boxes. Its sets, as this reader names them.
CSV_SETS = {"TRAIN": "train", "VALIDATION": "val", "TEST": "test", "UNASSIGNED": None}
# set, path, label, then four (x, y) vertices: two-corner rows fill the 1st and 3rd (x_min, y_min, x_max,
# y_max), four-corner rows all four, clockwise from the top left.
_CSV_CELLS = 11
# Corners are fractions of the picture's width and height; a corner beyond a whole picture outside it is
# no longer a box reaching over the edge but a pixel coordinate (or another mistake).
_CSV_CORNER_RANGE = (-1.0, 2.0)
_CSV_FORM = ("write SET,path,label,x_min,y_min,,,x_max,y_max,, with SET one of TRAIN, VALIDATION, TEST or "
             "UNASSIGNED and the corners normalized to 0..1 (or SET,path,,,,,,,,, for a picture without boxes)")


def _csv_corners(cells):
    """(x_min, y_min, x_max, y_max) of a row's eight corner cells, None for a row without a box; ValueError
    for a shape of filled cells that is neither form, or a cell that is no number."""
    filled = tuple(bool(c) for c in cells)
    if not any(filled):
        return None
    if filled == (True, True, False, False, True, True, False, False):
        points = [(float(cells[0]), float(cells[1])), (float(cells[4]), float(cells[5]))]
    elif all(filled):
        points = [(float(cells[k]), float(cells[k + 1])) for k in range(0, 8, 2)]
    else:
        raise ValueError("corners are neither x_min,y_min,,,x_max,y_max,, nor four x,y vertices")
    xs, ys = [x for x, _ in points], [y for _, y in points]
    low, high = _CSV_CORNER_RANGE
    if not all(np.isfinite(v) and low <= v <= high for v in xs + ys):
        raise ValueError("corners must be fractions of the picture's size, 0..1")
    return min(xs), min(ys), max(xs), max(ys)


def _csv_picture(name, base, where):
    """The picture a CSV row names (relative to the CSV file's folder, or absolute), which must exist."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", name, re.I):
        raise EdgekitError(f"{where}: picture {name} is not a local file: copy the pictures next to the CSV file "
                           "and write their paths relative to it")
    path = os.path.normpath(os.path.join(base, os.path.expanduser(name)))
    if not os.path.isfile(path):
        raise EdgekitError(f"{where}: picture {path} not found: paths are relative to the CSV file's folder, "
                           "or absolute")
    return path


def csv_rows(path, form, error=EdgekitError):
    """(line number, [cells stripped]) of the non-blank rows of a CSV file; `error` (an EdgekitError class) for
    a file that is not UTF-8 or not CSV, ending with `form` (what a row should hold)."""
    try:
        # utf-8-sig: spreadsheet programs start their UTF-8 CSV files with a byte-order mark.
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, [cell.strip() for cell in row]) for row in reader]
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text: save the CSV file as UTF-8") from None
    except csv.Error as problem:
        raise error(f"{path}: not a readable CSV file ({problem}); {form}") from None
    return [(number, cells) for number, cells in rows if any(cells)]


def read_csv_boxes(path, skip_unreadable=False):
    """TFLite Model Maker's object-detector CSV: `SET,path,label,x_min,y_min,,,x_max,y_max,,` per box (or the
    four-vertex form `x1,y1,x2,y1,x2,y2,x1,y2`), corners normalized to the picture's size; SET (TRAIN,
    VALIDATION, TEST, or AutoML's UNASSIGNED) declares the picture's split. Categories are the labels sorted
    (by `label_key`), ids from 1. `skip_unreadable`: a picture Pillow cannot open is left out and listed."""
    path = Path(path)
    base = os.path.dirname(os.path.abspath(path))
    pictures, boxes = {}, []  # picture -> (split, first line); boxes: (picture, label, corners)
    for number, cells in csv_rows(path, _CSV_FORM):
        where = f"{path}:{number}"
        if len(cells) < 2 or any(cells[_CSV_CELLS:]):
            raise _malformed(where, f"CSV row ({len(cells)} cells)", _CSV_FORM)
        cells = cells + [""] * (_CSV_CELLS - len(cells))
        if cells[0].upper() not in CSV_SETS:
            raise _malformed(where, f"CSV row (set {cells[0]!r})", _CSV_FORM)
        try:
            corners = _csv_corners(cells[3:_CSV_CELLS])
            if bool(cells[2]) != (corners is not None):
                raise ValueError("a label needs its box corners, and corners their label")
        except ValueError as e:
            raise _malformed(where, f"CSV row ({e})", _CSV_FORM) from None
        picture = _csv_picture(cells[1], base, where)
        split = CSV_SETS[cells[0].upper()]
        earlier = pictures.setdefault(picture, (split, number))
        if earlier[0] != split:
            raise EdgekitError(f"{where}: picture {cells[1]} is in set {cells[0].upper()} here but in another set "
                               f"on line {earlier[1]}: give each picture one set")
        if corners is not None:
            boxes.append((picture, cells[2], corners))
    if not pictures:
        raise EdgekitError(f"{path}: no rows: {_CSV_FORM}")
    spellings = {}
    for _, label, _ in boxes:
        spellings.setdefault(label_key(label), label)
    keys = sorted(spellings)
    categories = {k + 1: spellings[key] for k, key in enumerate(keys)}
    category_of = {key: k + 1 for k, key in enumerate(keys)}
    samples, images, splits, unreadable, ids = [], {}, {}, [], {}
    for picture, (split, _) in pictures.items():
        image_id = _admitted(picture, images, samples, skip_unreadable, unreadable)
        if image_id is None:
            continue
        ids[picture] = image_id
        splits[image_id] = split
    annotations = []
    for picture, label, (x0, y0, x1, y1) in boxes:
        if picture not in ids:
            continue
        _, width, height = images[ids[picture]]
        box = [x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height]
        annotations.append({"image_id": ids[picture], "category_id": category_of[label_key(label)], "bbox": box,
                            "area": box[2] * box[3], "iscrowd": 0})
    return DetectionSet(str(path), "csv", samples, images, categories, annotations, splits,
                        {image_id: str(path) for image_id in images}, unreadable)


def _admitted(path, images, samples, skip_unreadable, unreadable):
    """The next image id, the picture at `path` entered under it in `images` ({id: (path, width, height)}) and
    `samples`; or None, with (path, reason) added to `unreadable`, when Pillow cannot open it and
    `skip_unreadable` is set (else the error)."""
    try:
        width, height = picture_size(path)
    except EdgekitError as error:
        if not skip_unreadable:
            raise
        unreadable.append((str(path), str(error)))
        return None
    image_id = len(images)
    images[image_id] = (str(path), width, height)
    samples.append(Sample(str(path), image_id))
    return image_id


def picture_size(path):
    """(width, height) of a picture from its header (Pillow opens lazily: no pixels are decoded); an
    EdgekitError when Pillow cannot open it."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise EdgekitError(f"{path}: not an image file Pillow can read ({e})") from None


def category_map(dataset, labels):
    """{model class id: dataset category id}, by name when the model has labels, else id for id."""
    if not labels:
        return {c: c for c in dataset.categories}
    index = label_index(labels)
    mapping = {index[label_key(name)]: c for c, name in dataset.categories.items()
               if label_key(name) in index}
    if dataset.categories and not mapping:
        shown = ", ".join(repr(n) for n in list(dataset.categories.values())[:6])
        raise EdgekitError(f"{dataset.root}: no category of the annotations ({shown}) matches a label of the "
                           "model; pass the label file the model was trained with as --labels")
    return mapping


# --- segmentation ----------------------------------------------------------------------------------

def mask_set(root):
    """Pair images with masks of the same stem: images/ + masks/, or VOC's JPEGImages/ + SegmentationClass/."""
    root = _existing_folder(root)
    for image_dir, mask_dir in (("images", "masks"), ("JPEGImages", "SegmentationClass"),
                                ("images", "annotations")):
        if (root / image_dir).is_dir() and (root / mask_dir).is_dir():
            break
    else:
        raise EdgekitError(f"{root}: segmentation data needs images/ and masks/ folders (or VOC's "
                           "JPEGImages/ and SegmentationClass/), a mask per image with the same name")
    masks = {p.relative_to(root / mask_dir).with_suffix(""): p for p in list_images(root / mask_dir)}
    samples = []
    for image in list_images(root / image_dir):
        key = image.relative_to(root / image_dir).with_suffix("")
        if key in masks:
            samples.append(Sample(str(image), str(masks[key])))
    if not samples:
        raise EdgekitError(f"{root}: no image in {image_dir}/ has a mask of the same name in {mask_dir}/")
    return MaskSet(str(root), samples)


def read_mask(path):
    """Class ids of a mask image: palette indices of a P image (VOC), else its 8-bit grey values."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                image = image.convert("L")
            return np.asarray(image, dtype=np.int64)
    except (OSError, ValueError) as e:
        raise EdgekitError(f"{path}: cannot read the mask image ({e})") from None

