"""Where calibration pictures come from: a folder, a glob, a list file, a video, or a COCO / YOLO / VOC dataset.

`find_items(source)` turns whatever the user named into `Item`s (a file, or a frame of a video) tagged with
a stratum (the subfolder they came from); `sample_order(items, seed)` orders them so that the first n are
balanced over strata, the same n for the same seed. Nothing here decodes pixels: see `edgekit.calibration.data`.
"""

import glob
import json
import os
import random
from collections import namedtuple

from edgekit.errors import EdgekitError
from edgekit.image_folders import (coco_annotation_files, coco_picture_folders, coco_split, dataset_kind,
                                   find_picture, is_image_file, list_images, picture_root)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
LIST_SUFFIXES = (".txt", ".lst", ".list")
# Frames of a video next to each other are nearly the same picture: by default every 10th is a candidate.
VIDEO_EVERY = 10

# path: the file; frame: index of the video frame (None for a picture); stratum: what sampling balances over.
Item = namedtuple("Item", "path frame stratum")
# kind: folder | glob | list | video | coco | yolo | voc; items: every candidate, in a stable order.
Source = namedtuple("Source", "spec kind items")


class CalibrationDataError(EdgekitError):
    """The calibration source is missing, empty or holds nothing usable."""

    exit_code = 2


def _stratum(path, base):
    """The first folder below `base` (class folders, train/val splits); '' for pictures at the top."""
    parts = os.path.relpath(path, base).split(os.sep)
    return parts[0] if len(parts) > 1 else ""


def _pictures(paths, base):
    return [Item(p, None, _stratum(p, base)) for p in paths]


def _coco_images(folder):
    """Pictures the COCO annotation files list (every split: each is a stratum), found where the dataset
    keeps them."""
    items = []
    for path in coco_annotation_files(folder):
        try:
            with open(path, encoding="utf-8") as f:
                document = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(document, dict) or not isinstance(document.get("images"), list):
            continue
        split, folders = coco_split(path), coco_picture_folders(path, folder)
        for entry in document["images"]:
            name = entry.get("file_name") if isinstance(entry, dict) else None
            if not name:
                continue
            # A listed file that is not there still counts, as a skipped file.
            items.append(Item(find_picture(name, folders) or os.path.join(folders[0], name), None, split))
    return items


def _from_folder(folder):
    kind = dataset_kind(folder)
    if kind in ("voc", "yolo"):
        base = picture_root(folder, kind)
        return kind, _pictures(list_images(base), base)
    if kind == "coco":
        items = _coco_images(folder)
        if items:
            return kind, items
    # Not a dataset, or JSON files that list no pictures: every image below the folder.
    return "folder", _pictures(list_images(folder), folder)


def _from_list(path):
    """A text file naming one picture per line (relative to the file's folder); '#' starts a comment."""
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.split("#", 1)[0].strip() for line in f]
    except UnicodeDecodeError:
        raise CalibrationDataError(f"{path}: not a text list of image files (one path per line)") from None
    paths = [line if os.path.isabs(line) else os.path.join(base, line) for line in lines if line]
    return [Item(p, None, os.path.dirname(p)) for p in paths]


def video_frame_count(path):
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise CalibrationDataError(f"{path}: OpenCV cannot open this video; give an image folder instead, "
                                       "or re-encode the video as H.264 MP4")
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def _from_video(path, every):
    try:
        import cv2  # noqa: F401  (optional dependency: the `camera` extra)
    except ImportError:
        raise CalibrationDataError(f"{path}: reading video needs OpenCV: pip install 'edgekit[camera]'") from None
    frames = video_frame_count(path)
    # Strata are stretches of the video, so a sample spreads over its whole length.
    stretch = max(1, frames // 10)
    return [Item(path, k, str(k // stretch)) for k in range(0, frames, max(1, every))]


def find_items(spec, video_every=VIDEO_EVERY):
    """The `Source` a user named: a folder (recursive), glob pattern, list file, video or dataset folder."""
    spec = os.fspath(spec)
    if any(c in spec for c in "*?[") and not os.path.exists(spec):
        paths = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p) and is_image_file(p))
        base = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(spec)
        items = [Item(p, None, _stratum(p, os.path.dirname(base) if len(paths) <= 1 else base)) for p in paths]
        return _non_empty(Source(spec, "glob", items))
    if not os.path.exists(spec):
        raise CalibrationDataError(f"{spec}: no such calibration folder, file or pattern")
    if os.path.isdir(spec):
        kind, items = _from_folder(spec)
        return _non_empty(Source(spec, kind, items))
    if not os.access(spec, os.R_OK):
        raise CalibrationDataError(f"{spec}: permission denied: make the calibration data readable")
    lower = spec.lower()
    if lower.endswith(VIDEO_SUFFIXES):
        return _non_empty(Source(spec, "video", _from_video(spec, video_every)))
    if lower.endswith(LIST_SUFFIXES):
        return _non_empty(Source(spec, "list", _from_list(spec)))
    if is_image_file(spec):
        return Source(spec, "file", [Item(spec, None, "")])
    raise CalibrationDataError(f"{spec}: not a calibration source: give an image folder, a glob like 'imgs/*.jpg', "
                               "a .txt list of images, a video, or a COCO / YOLO / VOC dataset folder")


def _non_empty(source):
    if not source.items:
        raise CalibrationDataError(f"{source.spec}: no images found ({source.kind}); calibration needs pictures "
                                   f"like the ones the model will see (JPEG, PNG or BMP)")
    return source


def sample_order(items, seed=0):
    """Every item, in the order sampling takes them: shuffled within each stratum (seeded), then strata
    taken in turn, so the first n of the order are balanced over strata. Later items replace skipped ones."""
    rng = random.Random(seed)
    strata = {}
    for item in items:
        strata.setdefault(item.stratum, []).append(item)
    queues = []
    for key in sorted(strata):
        group = list(strata[key])
        rng.shuffle(group)
        queues.append(group)
    order, depth = [], 0
    while any(depth < len(q) for q in queues):
        order += [q[depth] for q in queues if depth < len(q)]
        depth += 1
    return order
