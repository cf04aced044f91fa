"""Pictures on disk as both `edgekit convert` (calibration data) and `edgekit eval` find them: which files are
images, every image of a folder in a stable order, and the COCO / YOLO / Pascal VOC dataset layouts (how to
tell one, and where it keeps its pictures).

Standard library only: calibration (part of the convert pipeline) and evaluation (TensorFlow-free, like the
runtime) both import this, so it must not drag either one's dependencies into the other.
"""

import glob
import os
import re

# Suffixes of the files Pillow opens (all registered in Image.registered_extensions(); WebP needs Pillow
# built with libwebp, as the wheels are); compared lower-case.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# Where each layout keeps its pictures, most specific first; the dataset folder itself is the last resort.
_PICTURE_FOLDERS = {"voc": ("JPEGImages", "images"), "yolo": ("images",)}
# Names that declare a split: Ultralytics' images/train, images/val, images/test (and Roboflow's "valid"),
# COCO's train2017 / val2017 folders and instances_*.json files; VOC's trainval list is training data too.
_SPLIT_NAME = re.compile(r"(?P<split>trainval|train|validation|valid|val|test)(?:[-_]?\d{4})?")
_SPLIT_OF = {"trainval": "train", "train": "train", "validation": "val", "valid": "val", "val": "val", "test": "test"}
# Pascal VOC's split lists (ImageSets/Main/<split>.txt, one image id a line), in the order they are applied: a
# picture listed in trainval and in val is a val picture.
VOC_SPLIT_LISTS = ("trainval", "train", "val", "test")


def is_image_file(name):
    """Whether `name` (a file name or path) has an image suffix."""
    return os.fspath(name).lower().endswith(IMAGE_SUFFIXES)


def list_images(folder):
    """Every image under `folder` as path strings, recursively, following links, leaving out hidden files
    and folders (.ipynb_checkpoints, macOS's ._ files). Each folder's files come sorted, then its subfolders
    sorted, so the order, and so a seeded sample or an image id, does not depend on the file system."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files) if is_image_file(f) and not f.startswith(".")]
    return found


def dataset_kinds(folder):
    """Every detection layout `folder` holds, in `dataset_kind`'s order: [] for a plain image folder, one kind
    for a clean dataset, several when it mixes them (training refuses that; `dataset_kind` takes the first)."""
    kinds = []
    if any(os.path.isdir(os.path.join(folder, name)) for name in ("Annotations", "JPEGImages")):
        kinds.append("voc")
    if os.path.isdir(os.path.join(folder, "labels")):
        kinds.append("yolo")
    if coco_annotation_files(folder):
        kinds.append("coco")
    return kinds


def dataset_kind(folder):
    """"voc", "yolo" or "coco" when `folder` is laid out as that dataset, else None (a plain image folder).

    VOC has Annotations/ (XML) or JPEGImages/; YOLO has labels/ (txt); COCO has an annotation .json at the
    top or in annotations/. Checked in that order: a folder exported in several formats counts as the first.
    """
    kinds = dataset_kinds(folder)
    return kinds[0] if kinds else None


def picture_folders(folder, kind):
    """Where a "voc" or "yolo" dataset's pictures may be, most likely first: JPEGImages/ (VOC), images/, then
    the dataset folder itself (which always exists)."""
    return [os.path.join(folder, name) for name in _PICTURE_FOLDERS[kind]] + [os.fspath(folder)]


def picture_root(folder, kind):
    """The folder holding every picture of a "voc" or "yolo" dataset: the first of `picture_folders` there is."""
    return next(path for path in picture_folders(folder, kind) if os.path.isdir(path))


def coco_annotation_files(folder):
    """The .json files of a COCO dataset folder: those at its top, then those in annotations/, each sorted."""
    literal = glob.escape(os.fspath(folder))  # a folder named like "data[2024]" is no pattern
    return [path for pattern in ("*.json", os.path.join("annotations", "*.json"))
            for path in sorted(glob.glob(os.path.join(literal, pattern)))]


def coco_split(annotation_file):
    """The split a COCO annotation file describes: instances_val2017.json -> val2017."""
    return os.path.splitext(os.path.basename(annotation_file))[0].replace("instances_", "")


def coco_picture_folders(annotation_file, folder):
    """Where the pictures an annotation file of the dataset `folder` names may be, most likely first: the
    split's own folder (train and val may reuse file names), images/, the dataset folder, then beside the
    annotation file (which may be given on its own, outside any dataset folder)."""
    split = coco_split(annotation_file)
    beside = os.path.dirname(os.fspath(annotation_file))
    candidates = [os.path.join(folder, split), os.path.join(folder, "images", split), os.path.join(folder, "images"),
                  folder, beside, os.path.join(beside, "images"), os.path.join(os.path.dirname(beside), "images"),
                  # an annotations/ folder given on its own, beside the split's folder (COCO's own layout:
                  # annotations/instances_val2017.json and val2017/) or beside images/<split>/
                  os.path.join(os.path.dirname(beside), split), os.path.join(os.path.dirname(beside), "images", split)]
    return list(dict.fromkeys(os.path.normpath(path) for path in candidates))


def find_picture(name, folders):
    """The first `folder/name` of `folders` that is a file, else None."""
    return next((os.path.join(f, name) for f in folders if os.path.isfile(os.path.join(f, name))), None)


def split_named(name):
    """"train", "val" or "test" when `name` (a folder, or a file name without its suffix) declares that split
    (train, train2017, trainval, val, valid, validation, val2017, test...), else None."""
    found = _SPLIT_NAME.fullmatch(os.fspath(name).lower())
    return _SPLIT_OF[found.group("split")] if found else None


def voc_split_lists(folder):
    """[(split, list file)] of a Pascal VOC folder's ImageSets/Main/{trainval,train,val,test}.txt that exist, in
    `VOC_SPLIT_LISTS` order (trainval counted as "train")."""
    main = os.path.join(folder, "ImageSets", "Main")
    return [(split_named(name), os.path.join(main, name + ".txt")) for name in VOC_SPLIT_LISTS
            if os.path.isfile(os.path.join(main, name + ".txt"))]


def yolo_split_folders(folder):
    """{sub-folder name: split} of a YOLO folder's picture root whose names declare a split (images/train,
    images/val, images/test, as Ultralytics lays them out; labels/ mirrors them)."""
    base = picture_root(folder, "yolo")
    return {name: split_named(name) for name in sorted(os.listdir(base))
            if split_named(name) and os.path.isdir(os.path.join(base, name))}
