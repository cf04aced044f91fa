"""The labelled boxes `edgekit train` teaches a detector: read, checked and split, in pixels per picture.

What `--data`, `--val` and `--test` name is any detection set `edgekit eval` reads, through the very same
readers (`edgekit.evaluation.datasets`): a COCO folder (instances JSON + pictures) or .json file, a Pascal VOC
folder (Annotations/*.xml, JPEGImages/), a YOLO folder (images/, labels/, classes.txt or data.yaml), or TFLite
Model Maker's object-detector CSV. On top of reading, training needs:

- one class list, in the model's output order: `classes` when given, else the data's own (COCO categories in
  id order, YOLO's names in id order, VOC and CSV labels sorted);
- boxes that fit their picture: clipped to it (counted), and dropped when nothing is left of them (counted);
- splits: explicit `val` / `test` data first, then the split the format declares (several COCO instances_*.json,
  VOC's ImageSets/Main lists, YOLO's images/train|val|test, the CSV's set column), then a seeded random share
  of the training pictures for each split nobody declared;
- one line for every mistake a user can make (`BoxDataError`, exit code 2).

Pictures are opened only for their size (Pillow reads the header, no pixels): a picture Pillow cannot open is
left out with a warning, or is an error when most of a source's pictures are like it (`MOST_UNREADABLE`, as
for the classifier). Standard library, numpy and Pillow only: nothing here imports TensorFlow.
"""

import os
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edgekit import image_folders
from edgekit.errors import EdgekitError
from edgekit.evaluation import datasets
from edgekit.training.labelled_data import (MOST_UNREADABLE, TEST_SPLIT, VAL_SPLIT, TrainingDataError, fraction,
                                            split_counts)

BoxPicture = namedtuple("BoxPicture", "path width height boxes labels crowd")
"""One training picture: boxes np.float32 [N, 4] in pixels (xmin, ymin, xmax, ymax) within the picture, labels
np.int32 [N] (indices into the class names), crowd np.bool_ [N] (COCO's iscrowd, VOC's difficult: regions kept
out of the training targets and neither rewarded nor penalized by evaluation). N may be 0."""
BoxSplits = namedtuple("BoxSplits", "train val test class_names format root clipped dropped warnings")
"""train / val / test: [BoxPicture] (val and test may be empty); class_names: [str], the model's output order;
format: "coco", "voc", "yolo" or "csv" (of `data`); root: `data` as given; clipped / dropped: boxes clipped to
their picture / dropped for having no area left; warnings: one-line strings for the user."""

# The layouts' names in messages.
FORMAT_NAMES = {"coco": "COCO", "voc": "Pascal VOC", "yolo": "YOLO", "csv": "Model Maker CSV"}
# How each layout shows in a folder, for the message about a folder that mixes them.
_FOLDER_SIGNS = {"voc": "Annotations/ or JPEGImages/", "yolo": "labels/", "coco": "an annotation .json"}
_FORMS = ("give a COCO folder or .json file, a Pascal VOC folder (Annotations/*.xml and JPEGImages/), a YOLO "
          "folder (images/, labels/*.txt and classes.txt) or a Model Maker .csv file")
# A box reaches outside its picture when a side lies beyond the edge by more than this many pixels: corners
# written with a few decimals (YOLO's normalized six, a CSV's) land within a small fraction of a pixel of the
# edge without being outside it.
EDGE_TOLERANCE = 0.01
ROLES = ("val", "test")


class BoxDataError(TrainingDataError):
    """The detection training data is missing, malformed, mislabelled or has no boxes."""


# What --data, --val or --test named, read: spec as given; format: a FORMATS key; parts: [Part]; declared: the
# splits the data declares (a declared split may hold no picture); warnings: [str].
Source = namedtuple("Source", "spec format parts declared warnings")
# One annotation set of a source, with the split its file declares (COCO's instances_val.json: "val"), or None
# when the set itself says per picture (DetectionSet.splits) or nothing does.
Part = namedtuple("Part", "dataset split")
# A source turned into pictures: pictures [(BoxPicture, declared split or None)], and boxes clipped / dropped.
Converted = namedtuple("Converted", "pictures clipped dropped")


def _counted(count, noun):
    """"1 box", "2 boxes"."""
    plural = noun + ("es" if noun.endswith("x") else "s")
    return f"{count} {noun if count == 1 else plural}"


def _names_text(names, limit=8):
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (", ..." if len(names) > limit else "")


# --- reading a source ------------------------------------------------------------------------------------------

def _read_folder(folder):
    kinds = image_folders.dataset_kinds(folder)
    if not kinds:
        raise BoxDataError(f"{folder}: no detection annotations found: {_FORMS}")
    if len(kinds) > 1:
        found = ", ".join(f"{FORMAT_NAMES[kind]} ({_FOLDER_SIGNS[kind]})" for kind in kinds)
        coco = ", or give the COCO .json file itself" if "coco" in kinds else ""
        raise BoxDataError(f"{folder}: mixes detection formats: {found}: keep one format per folder{coco}")
    kind = kinds[0]
    if kind == "voc":
        dataset = datasets.read_voc(folder, skip_unreadable=True)
        declared = {split for split, _ in image_folders.voc_split_lists(folder)}
        return Source(folder, kind, [Part(dataset, None)], declared, [])
    if kind == "yolo":
        orphans = datasets.orphan_yolo_labels(folder)
        if orphans:
            picture_root = image_folders.picture_root(folder, "yolo")
            raise BoxDataError(f"{orphans[0]}: labels of a picture that is not in {picture_root} "
                               f"({_counted(len(orphans), 'label file')} like it): add the picture (same name, "
                               "an image suffix) or remove the label file")
        dataset = datasets.read_yolo(folder, skip_unreadable=True)
        declared = set(image_folders.yolo_split_folders(folder).values())
        return Source(folder, kind, [Part(dataset, None)], declared, [])
    files = image_folders.coco_annotation_files(folder)
    # A COCO download's annotations/ also holds captions_* and person_keypoints_* files: boxes are instances_*.
    instances = [path for path in files if os.path.basename(path).startswith("instances_")]
    files = instances or files
    if len(files) == 1:
        return Source(folder, kind, [Part(datasets.read_coco(files[0], folder), None)], set(), [])
    splits = {path: image_folders.split_named(image_folders.coco_split(path)) for path in files}
    if None in splits.values() or "train" not in splits.values():
        shown = ", ".join(os.path.basename(path) for path in files[:4])
        raise BoxDataError(f"{folder}: several annotation files ({shown}): name them instances_train.json, "
                           "instances_val.json and instances_test.json to use them as those splits, or give the "
                           "one to use as --data FILE.json")
    parts = [Part(datasets.read_coco(path, folder), split) for path, split in splits.items()]
    return Source(folder, kind, parts, set(splits.values()), [])


def _read_source(spec):
    """`Source` of a dataset folder or a COCO .json / Model Maker .csv file; every reader error as a BoxDataError."""
    spec = os.fspath(spec)
    if not os.path.exists(spec):
        raise BoxDataError(f"{spec}: no such detection data: {_FORMS}")
    try:
        if os.path.isdir(spec):
            source = _read_folder(spec)
        elif spec.lower().endswith(".json"):
            source = Source(spec, "coco", [Part(datasets.read_coco(spec), None)], set(), [])
        elif spec.lower().endswith(".csv"):
            dataset = datasets.read_csv_boxes(spec, skip_unreadable=True)
            source = Source(spec, "csv", [Part(dataset, None)], set(dataset.splits.values()) - {None}, [])
        else:
            raise BoxDataError(f"{spec}: not a dataset folder, a COCO .json or a Model Maker .csv file: {_FORMS}")
    except BoxDataError:
        raise
    except EdgekitError as error:
        raise BoxDataError(str(error)) from None
    if source.format == "coco":
        source = _coco_pictures_opened(source)
    return _unreadable_checked(source)


def _opened(path):
    """(width, height) of a picture, or the one-line reason Pillow cannot open it."""
    try:
        return datasets.picture_size(path)
    except EdgekitError as error:
        return str(error)


def _coco_pictures_opened(source):
    """The COCO parts with each picture opened for its size, as the other readers do: unreadable pictures
    left out (and listed), sizes taken from the files, and a warning for JSON sizes that differ from them."""
    parts, notes = [], []
    for part in source.parts:
        dataset = part.dataset
        paths = [dataset.images[image_id][0] for image_id in sorted(dataset.images)]
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            opened = dict(zip(paths, pool.map(_opened, paths)))
        unreadable = [(path, opened[path]) for path in paths if isinstance(opened[path], str)]
        images, differ = {}, []
        for image_id, (path, width, height) in dataset.images.items():
            if isinstance(opened[path], str):
                continue
            images[image_id] = (path, *opened[path])
            if tuple(opened[path]) != (width, height):
                differ.append(f"{path}: {width}x{height} in the JSON, {opened[path][0]}x{opened[path][1]} in the file")
        if differ:
            origin = dataset.annotation_files[next(iter(dataset.images))]
            notes.append(f"{origin}: {_counted(len(differ), 'picture')} of another size than the JSON says (first: "
                         f"{differ[0]}): boxes are kept as written and clipped to the file's size")
        dataset = dataset._replace(images=images, unreadable=unreadable,
                                   samples=[s for s in dataset.samples if s.target in images],
                                   annotations=[a for a in dataset.annotations if a["image_id"] in images])
        parts.append(part._replace(dataset=dataset))
    return source._replace(parts=parts, warnings=source.warnings + notes)


def _unreadable_checked(source):
    """The source, with a warning for the pictures left out as unreadable, or an error when they are most."""
    bad = [entry for part in source.parts for entry in part.dataset.unreadable]
    if not bad:
        return source
    total = len(bad) + sum(len(part.dataset.images) for part in source.parts)
    if len(bad) > MOST_UNREADABLE * total:
        raise BoxDataError(f"{source.spec}: {len(bad)} of its {total} pictures cannot be read (first: {bad[0][1]}): "
                           "check that these are pictures and were copied whole")
    note = f"{source.spec}: {len(bad)} of {total} pictures skipped as unreadable (first: {bad[0][1]})"
    return source._replace(warnings=source.warnings + [note])


# --- the class list ---------------------------------------------------------------------------------------------

def _given_classes(classes):
    """The class names `classes` fixes: a list of names, or a text file of one name a line."""
    if isinstance(classes, (str, os.PathLike)):
        where = os.fspath(classes)
        if not os.path.isfile(where):
            raise BoxDataError(f"{where}: no such class list file: give a text file with one class name a line")
        try:
            with open(where, encoding="utf-8-sig") as f:
                names = [line.strip() for line in f if line.strip()]
        except UnicodeDecodeError:
            raise BoxDataError(f"{where}: not UTF-8 text: save the class list as UTF-8") from None
    else:
        where, names = "the class list", [str(name).strip() for name in classes]
    if not names or not all(names):
        raise BoxDataError(f"{where}: {'an empty class name' if names else 'no class names'}: give one name per "
                           "class, in the model's output order")
    first = {}
    for name in names:
        earlier = first.setdefault(datasets.label_key(name), name)
        if earlier is not name:
            raise BoxDataError(f"{where}: class {name!r} is given twice ({earlier!r} and {name!r} name the same class, "
                               "compared without case): give each class once")
    return names


def _yolo_classes(dataset, notes):
    """A YOLO folder's classes: its names in id order; without a names file, "class N" for every id used."""
    names = datasets.yolo_names(dataset.root)
    if datasets.yolo_names_file(dataset.root) is None:
        top = max(dataset.categories, default=-1)
        notes.append(f"{dataset.root}: no classes.txt or data.yaml names the classes: they are called 'class 0' to "
                     f"'class {top}': write their names, one a line in id order, in "
                     f"{os.path.join(dataset.root, 'classes.txt')}")
        return [f"class {i}" for i in range(top + 1)]
    top = max(names, default=-1)
    unnamed = [i for i in range(top + 1) if i not in names]
    if unnamed:
        notes.append(f"{datasets.yolo_names_file(dataset.root)}: no name for class id "
                     f"{', '.join(map(str, unnamed))}: called 'class N'")
    return [names.get(i, f"class {i}") for i in range(top + 1)]


def _data_classes(source, notes):
    """The class list the training data itself gives (see the module's docstring)."""
    if source.format == "yolo":
        return _yolo_classes(source.parts[0].dataset, notes)
    named = [(category, name) for part in source.parts for category, name in part.dataset.categories.items()]
    if source.format == "coco":
        named.sort(key=lambda pair: pair[0])
    else:
        named.sort(key=lambda pair: datasets.label_key(pair[1]))
    first = {}
    for _, name in named:
        first.setdefault(datasets.label_key(name), name)
    return list(first.values())


def _category_names(source, dataset, given):
    """{category id: label name, or an error message for an id that names no class} of one dataset."""
    if source.format != "yolo":
        return dict(dataset.categories)
    names_file = datasets.yolo_names_file(dataset.root)
    names = datasets.yolo_names(dataset.root)
    named = {}
    for category, name in dataset.categories.items():
        if names_file is not None and category not in names:
            named[category] = BoxDataError(f"class id {category} is not among the {len(names)} names of "
                                           f"{names_file}: add its name there (one a line, in id order) or fix the "
                                           "label")
        elif names_file is None and given is not None:
            named[category] = given[category] if category < len(given) else BoxDataError(
                f"class id {category} is beyond the {len(given)} names of the class list: give a name for every "
                "class id, in id order")
        else:
            named[category] = name
    return named


# --- boxes ------------------------------------------------------------------------------------------------------

def _mapper(source, dataset, class_names, given, role, owner="the training data's"):
    """category id -> class index for one dataset; a BoxDataError naming the label and file for a category
    outside `class_names` (`owner`'s classes; raised when a box uses it)."""
    index = {datasets.label_key(name): k for k, name in enumerate(class_names)}
    named = _category_names(source, dataset, given)

    def unknown(label):
        if role != "train":
            return (f"{role} label {label!r} is not among {owner} classes ({_names_text(class_names)}): use "
                    f"{owner} class names")
        return (f"label {label!r} is not in the class list ({_names_text(class_names)}): add it to the class list, "
                "or remove its boxes")

    def class_of(category, image_id):
        name = named.get(category, str(category))
        where = dataset.annotation_files.get(image_id) or dataset.images[image_id][0]
        if isinstance(name, BoxDataError):
            raise BoxDataError(f"{where}: {name}")
        if datasets.label_key(name) not in index:
            raise BoxDataError(f"{where}: {unknown(name)}")
        return index[datasets.label_key(name)]

    return class_of


def fitted_boxes(corners, width, height):
    """Boxes [N, 4] (xmin, ymin, xmax, ymax) clipped to a width x height picture: (boxes, kept, clipped) with
    kept marking the boxes with area left and clipped those of them that reached outside the picture."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    inside = np.clip(corners, 0.0, np.array([width, height, width, height], dtype=np.float64))
    kept = (inside[:, 2] > inside[:, 0]) & (inside[:, 3] > inside[:, 1])
    clipped = kept & np.any(np.abs(inside - corners) > EDGE_TOLERANCE, axis=1)
    return inside, kept, clipped


def _converted(source, class_names, given, role, owner="the training data's"):
    """The source's pictures as BoxPictures with their declared splits, boxes fitted to their pictures."""
    pictures, clipped, dropped, first = [], 0, 0, {}
    for part in source.parts:
        dataset = part.dataset
        class_of = _mapper(source, dataset, class_names, given, role, owner)
        by_image = {}
        for annotation in dataset.annotations:
            by_image.setdefault(annotation["image_id"], []).append(annotation)
        for sample in dataset.samples:
            image_id = sample.target
            path, width, height = dataset.images[image_id]
            found = by_image.get(image_id, [])
            corners = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in found)]
            labels = np.array([class_of(a["category_id"], image_id) for a in found], dtype=np.int32)
            crowd = np.array([bool(a["iscrowd"]) for a in found], dtype=np.bool_)
            boxes, kept, reached = fitted_boxes(corners, width, height)
            if reached.any():
                first.setdefault("clipped", path)
            if not kept.all():
                first.setdefault("dropped", path)
            clipped += int(reached.sum())
            dropped += int((~kept).sum())
            picture = BoxPicture(path, int(width), int(height), boxes[kept].astype(np.float32), labels[kept],
                                 crowd[kept])
            split = part.split or (dataset.splits.get(image_id) if dataset.splits else None)
            pictures.append((picture, split))
    notes = []
    if clipped:
        notes.append(f"{source.spec}: {_counted(clipped, 'box')} reaching outside their picture clipped to it "
                     f"(first: {first['clipped']})")
    if dropped:
        notes.append(f"{source.spec}: {_counted(dropped, 'box')} with no area inside their picture dropped "
                     f"(first: {first['dropped']})")
    return Converted(pictures, clipped, dropped), notes


def _check_has_boxes(source, converted):
    boxes = sum(int((~p.crowd).sum()) for p, _ in converted.pictures)
    if boxes:
        return
    after = ""
    if converted.dropped:
        after = f", all {_counted(converted.dropped, 'box')} having no area inside their picture"
    raise BoxDataError(f"{source.spec}: no boxes in its {_counted(len(converted.pictures), 'picture')}{after}: a "
                       f"detector learns from boxes: annotate the objects in its {FORMAT_NAMES[source.format]} "
                       "annotations")


# --- splitting --------------------------------------------------------------------------------------------------

def _carved(pool, fractions, seed, data):
    """{role: [pictures]} for "train" and each role of `fractions` ({role: share > 0}): a seeded random choice of
    pictures of `pool`, each split keeping the pool's order."""
    roles = list(fractions)
    counts = split_counts(len(pool), [fractions[role] for role in roles])
    if counts is None:
        raise BoxDataError(f"{data}: {_counted(len(pool), 'training picture')}, too few to split off "
                           f"{' and '.join(roles)}: that needs at least {1 + len(roles)}: add pictures, give "
                           f"--{'/--'.join(roles)} data, or set --{'-split/--'.join(roles)}-split to 0")
    order = np.random.default_rng(seed).permutation(len(pool))
    chosen, start = {}, 0
    for role, count in zip(roles, counts):
        for position in order[start:start + count]:
            chosen[int(position)] = role
        start += count
    result = {role: [] for role in ["train"] + roles}
    for position, picture in enumerate(pool):
        result[chosen.get(position, "train")].append(picture)
    return result


def _split(source, converted, explicit, fractions, seed):
    """{role: [BoxPicture]} of `data` and the warnings splitting gave (see `read_boxes`)."""
    result = {"train": [], "val": [], "test": []}
    pool, unlisted, overridden = [], [], {role: 0 for role in ROLES}
    for picture, split in converted.pictures:
        if split in ROLES and explicit[split] is not None:
            overridden[split] += 1
        elif split in ROLES:
            result[split].append(picture)
        elif split is None and source.format == "voc" and "train" in source.declared:
            unlisted.append(picture)  # VOC lists its detection pictures; the others serve its other tasks
        else:
            pool.append(picture)
    carve = {role: fractions[role] for role in ROLES
             if fractions[role] > 0 and explicit[role] is None and role not in source.declared}
    divided = _carved(pool, carve, seed, source.spec) if carve else {"train": pool}
    for role, pictures in divided.items():
        result[role] += pictures
    notes = []
    if unlisted:
        notes.append(f"{source.spec}: {_counted(len(unlisted), 'picture')} in no ImageSets/Main list left out (first: "
                     f"{unlisted[0].path}): list them in train.txt, val.txt or test.txt to use them")
    for role in ROLES:
        if overridden[role]:
            notes.append(f"{source.spec}: {_counted(overridden[role], 'picture')} it declares {role} left out: "
                         f"--{role} {explicit[role]} gives the {role} pictures")
    if not result["train"]:
        raise BoxDataError(f"{source.spec}: no training pictures: every picture is declared val or test: declare some "
                           "train, or give the val / test pictures as --val / --test data")
    return result, notes


def _overlap_notes(result):
    train = {os.path.realpath(picture.path) for picture in result["train"]}
    notes = []
    for role in ROLES:
        shared = [p.path for p in result[role] if os.path.realpath(p.path) in train]
        if shared:
            notes.append(f"{_counted(len(shared), role + ' picture')} also in the training data (first: {shared[0]}): "
                         f"{role} scores will look better than they are")
    return notes


def _classes_without_boxes(class_names, pictures, data):
    counts = box_counts(pictures, class_names)
    absent = [name for name in class_names if counts[name] == 0]
    if not absent:
        return []
    return [f"{data}: no training boxes of class{'es' if len(absent) > 1 else ''} {_names_text(absent)}: the detector "
            f"cannot learn {'them' if len(absent) > 1 else 'it'}"]


def read_boxes(data, *, val=None, test=None, val_split=VAL_SPLIT, test_split=TEST_SPLIT, seed=0, classes=None):
    """Read, check and split detection training data: `BoxSplits`.

    `data`, `val`, `test`: a COCO folder or .json file, a Pascal VOC folder, a YOLO folder or a Model Maker
    .csv file. Explicit `val` / `test` data win (all their pictures are that split; pictures `data` declares in
    that split are left out); then the splits `data` declares; each split neither gives is a seeded random share
    (`val_split`, `test_split`: fractions, 0 for none) of the training pictures. `classes`: a list of names or a
    text file of one name a line, fixing the classes and their order (labels matched by
    `datasets.label_key`); by default the data's own. `val` / `test` labels map onto the training class list.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BoxDataError(f"--seed must be a whole number of at least 0, not {seed!r}")
    fractions = {"val": fraction(val_split, "--val-split", BoxDataError),
                 "test": fraction(test_split, "--test-split", BoxDataError)}
    if sum(fractions.values()) >= 1.0:
        raise BoxDataError(f"--val-split {fractions['val']:g} and --test-split {fractions['test']:g} leave nothing "
                           "to train on: make their sum less than 1")
    given = _given_classes(classes) if classes is not None else None
    source = _read_source(data)
    explicit = {"val": val, "test": test}
    others = {role: _read_source(spec) for role, spec in explicit.items() if spec is not None}
    notes = list(source.warnings)
    class_names = given if given is not None else _data_classes(source, notes)

    converted, found = _converted(source, class_names, given, "train")
    notes += found
    _check_has_boxes(source, converted)
    clipped, dropped = converted.clipped, converted.dropped
    result, found = _split(source, converted, explicit, fractions, seed)
    notes += found
    for role, other in others.items():
        notes += other.warnings
        if other.declared:
            declared = "/".join(sorted(other.declared))
            notes.append(f"{other.spec}: its own {declared} split is not used: all its pictures are {role} pictures")
        pictures, found = _converted(other, class_names, given, role)
        _check_has_boxes(other, pictures)
        notes += found
        clipped, dropped = clipped + pictures.clipped, dropped + pictures.dropped
        result[role] = [picture for picture, _ in pictures.pictures]
    if not any((~p.crowd).any() for p in result["train"]):
        raise BoxDataError(f"{data}: its training pictures have no boxes (all its boxes are in val or test pictures): "
                           "declare pictures with boxes train")
    notes += _classes_without_boxes(class_names, result["train"], data)
    notes += _overlap_notes(result)
    return BoxSplits(result["train"], result["val"], result["test"], list(class_names), source.format,
                     os.fspath(data), clipped, dropped, notes)


def pictures_for(spec, class_names, on_warning=None):
    """Every picture of a detection set of any format `read_boxes` takes (its declared splits not read) as
    BoxPictures labelled by their index in `class_names` (a trained model's labels), for scoring the model.

    An error for a label the model lacks, for a set without boxes, or when most pictures cannot be read; each
    warning (pictures skipped, boxes clipped or dropped) goes to `on_warning` (a callable taking one line)."""
    source = _read_source(spec)
    class_names = list(class_names)  # a YOLO set without names: class id N is the model's class N
    converted, notes = _converted(source, class_names, class_names, "evaluation", owner="the model's")
    _check_has_boxes(source, converted)
    if on_warning is not None:
        for line in source.warnings + notes:
            on_warning(line)
    return [picture for picture, _ in converted.pictures]


# --- summaries ------------------------------------------------------------------------------------------------

def coco_truth(pictures, class_names):
    """(images, categories, annotations) of `pictures` as `evaluation.metrics.coco_map` takes them: image id =
    index in `pictures`, category id = class index + 1, bbox [x, y, w, h] in pixels, crowd boxes iscrowd 1."""
    images = {k: (p.path, p.width, p.height) for k, p in enumerate(pictures)}
    categories = {k + 1: name for k, name in enumerate(class_names)}
    annotations = []
    for k, picture in enumerate(pictures):
        for (x0, y0, x1, y1), label, crowd in zip(picture.boxes.tolist(), picture.labels.tolist(),
                                                  picture.crowd.tolist()):
            annotations.append({"image_id": k, "category_id": label + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "area": (x1 - x0) * (y1 - y0), "iscrowd": int(crowd)})
    return images, categories, annotations


def box_counts(pictures, class_names):
    """{class name: how many (non-crowd) boxes of it `pictures` hold}, every class named."""
    counts = np.zeros(len(class_names), dtype=np.int64)
    for picture in pictures:
        counts += np.bincount(picture.labels[~picture.crowd], minlength=len(class_names))[:len(class_names)]
    return {name: int(count) for name, count in zip(class_names, counts)}


def describe_split(pictures):
    """{"pictures", "boxes" (non-crowd), "empty" (pictures without a non-crowd box)} of one split."""
    boxes = [int((~picture.crowd).sum()) for picture in pictures]
    return {"pictures": len(pictures), "boxes": sum(boxes), "empty": sum(1 for count in boxes if count == 0)}
