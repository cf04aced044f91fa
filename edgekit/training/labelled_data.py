"""The labelled pictures `edgekit train` learns from: reading them, checking them, splitting them.

What `--data`, `--val` and `--test` name is either
- a folder with one sub-folder per class (the folder's name is the class; its pictures are found recursively,
  hidden files and folders left out; pictures lying directly in the folder belong to no class and are
  ignored with a warning), or
- a CSV file of `path,label` lines with an optional third column `train`, `val` or `test` (paths relative to
  the CSV file's folder, or absolute; an optional header line `path,label[,split]`).

`make_splits` reads them, decodes every picture once (`scan_readable`) so that corrupt and truncated files are
found before training rather than in its middle, and splits what `--data` holds into train / val / test:
stratified per class and seeded, so the same seed gives the same split. Where a split comes from is decided
in this order: explicit `--val` / `--test` data, then the CSV's split column, then the fractions.

The class names, sorted, are the model's output order (and its labels.txt). Standard library, numpy and
Pillow only: nothing here needs TensorFlow.
"""

import os
import zlib
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from edgekit.errors import EdgekitError
from edgekit.evaluation import datasets
from edgekit.image_folders import is_image_file, list_images
from edgekit.progress import Progress
from edgekit.runtime import images

SPLIT_NAMES = ("train", "val", "test")
CSV_SUFFIX = ".csv"
# The header line a CSV file may start with (compared lower-case, spaces stripped).
CSV_HEADER = ("path", "label", "split")
# More unreadable pictures than this share of a source is no longer "a few bad files" but the wrong data.
MOST_UNREADABLE = 0.5
# The default share of --data split off for validation and for testing when no --val / --test is given.
VAL_SPLIT = 0.1
TEST_SPLIT = 0.1

# source: what the user named; kind: "folder" or "csv"; paths / labels (class-name strings): one per picture;
# splits: None, or per picture None / "train" / "val" / "test" (a CSV's split column); warnings: [str].
Labelled = namedtuple("Labelled", "source kind paths labels splits warnings")
# paths: [str]; labels: np.int64 [N], indices into the class names.
Subset = namedtuple("Subset", "paths labels")
# train / val / test: a Subset, or None for a split nobody asked for; class_names: the model's output order;
# skipped: [(path, reason)] of unreadable pictures left out; warnings: [str] for the user.
Splits = namedtuple("Splits", "train val test class_names skipped warnings")
# readable: the paths that decode, in the order given; skipped: [(path, reason)] of those that do not.
Scan = namedtuple("Scan", "readable skipped")
# What is left of a Labelled once unreadable pictures are dropped, and the warnings that dropping gave.
Kept = namedtuple("Kept", "paths labels splits warnings")

_FORMS = "give a folder with one sub-folder of pictures per class, or a CSV file of path,label lines"


class TrainingDataError(EdgekitError):
    """The training pictures are missing, unreadable, mislabelled or too few."""

    exit_code = 2


# --- reading what the user named -------------------------------------------------------------------------

def read_labelled(spec):
    """The pictures and labels of a class folder or a CSV file (`Labelled`); nothing is decoded yet."""
    spec = os.fspath(spec)
    if not os.path.exists(spec):
        raise TrainingDataError(f"{spec}: no such training data folder or CSV file: {_FORMS}")
    if os.path.isdir(spec):
        return _read_folder(spec)
    if spec.lower().endswith(CSV_SUFFIX):
        return _read_csv(spec)
    raise TrainingDataError(f"{spec}: not a folder or a {CSV_SUFFIX} file: {_FORMS}")


def _counted(count, noun):
    """"1 picture", "2 pictures"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _read_folder(folder):
    try:
        entries = sorted(os.listdir(folder))
    except PermissionError:
        raise TrainingDataError(f"{folder}: permission denied: make the training data folder readable") from None
    class_folders = [name for name in entries if not name.startswith(".") and os.path.isdir(os.path.join(folder, name))]
    loose = [name for name in entries if not name.startswith(".") and is_image_file(name)
             and os.path.isfile(os.path.join(folder, name))]
    if not class_folders:
        found = f" ({_counted(len(loose), 'picture')} directly in it)" if loose else ""
        raise TrainingDataError(f"{folder}: no class folders{found}: put each class's pictures in a sub-folder "
                                f"named after the class ({os.path.join(folder, 'cat', '1.jpg')}, "
                                f"{os.path.join(folder, 'dog', '2.jpg')})")
    pictures = {name: list_images(os.path.join(folder, name)) for name in class_folders}
    if not any(pictures.values()):
        raise TrainingDataError(f"{folder}: no pictures in its class folders ({', '.join(class_folders)}): add "
                                "JPEG, PNG or BMP pictures to each")
    for name in class_folders:
        if not pictures[name]:
            raise TrainingDataError(f"{os.path.join(folder, name)}: class '{name}' has no pictures: add pictures "
                                    "of it, or remove the folder")
    notes = []
    if loose:
        notes.append(f"{folder}: {_counted(len(loose), 'picture')} directly in the folder ignored (first: "
                     f"{loose[0]}): only pictures inside class sub-folders are used")
    paths = [path for name in class_folders for path in pictures[name]]
    labels = [name for name in class_folders for _ in pictures[name]]
    return Labelled(folder, "folder", paths, labels, None, notes)


def _is_header(cells):
    names = [cell.lower().replace(" ", "") for cell in cells]
    return len(names) in (2, 3) and tuple(names) == CSV_HEADER[:len(names)]


def _read_csv(path):
    rows = datasets.csv_rows(path, "write one path,label line per picture", TrainingDataError)
    if rows and _is_header(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise TrainingDataError(f"{path}: no pictures listed: write one path,label line per picture")
    base = os.path.dirname(os.path.abspath(path))
    paths, labels, splits, lines = [], [], [], []
    for number, cells in rows:
        if len(cells) not in (2, 3):
            raise TrainingDataError(f"{path}: line {number}: {len(cells)} columns: write path,label or "
                                    "path,label,split")
        name, label = cells[0], cells[1]
        split = cells[2].lower() if len(cells) == 3 and cells[2] else None
        if not name:
            raise TrainingDataError(f"{path}: line {number}: empty path: name the picture's file")
        if not label:
            raise TrainingDataError(f"{path}: line {number}: empty label: give every picture a class name "
                                    "(path,label)")
        if split is not None and split not in SPLIT_NAMES:
            raise TrainingDataError(f"{path}: line {number}: split '{cells[2]}' is not train, val or test: fix "
                                    "it or leave the third column empty")
        paths.append(os.path.normpath(os.path.join(base, os.path.expanduser(name))))
        labels.append(label)
        splits.append(split)
        lines.append(number)
    missing = [(number, picture) for number, picture in zip(lines, paths) if not os.path.isfile(picture)]
    if missing:
        number, picture = missing[0]
        raise TrainingDataError(f"{path}: {len(missing)} of the {len(paths)} pictures it lists do not exist "
                                f"(first: line {number}, {picture}): paths are relative to the CSV file's folder, "
                                "or absolute")
    has_splits = any(split is not None for split in splits)
    return Labelled(path, "csv", paths, labels, splits if has_splits else None, [])


# --- checking that pictures decode -------------------------------------------------------------------------

def _decodes_quickly(path):
    """Whether `path` decodes into RGB pixels, a JPEG at 1/8 scale (libjpeg's DCT scaling, asked for through
    Pillow's `draft`): the whole compressed stream is still read, so truncation and corrupt data still fail,
    at a fraction of the cost of full-size pixels. Run under `images.pillow_warnings()`."""
    try:
        with Image.open(path) as picture:
            width, height = picture.size
            if width * height > images.MAX_PIXELS:
                return False
            if picture.format == "JPEG":
                picture.draft(None, (1, 1))  # the smallest scale libjpeg offers
            picture.load()
            images.convert(picture, "RGB")
        return True
    except Exception:  # noqa: BLE001  (every failure is judged again, and explained, by the runtime's reader)
        return False


def _reason(path):
    """Why `images.load_image` cannot read `path` (its one-line message), or None when it can."""
    try:
        images.load_image(path, "RGB")
    except EdgekitError as error:
        return str(error)
    return None


def unreadable_reason(path):
    """None when `path` decodes into RGB pixels as `edgekit run` would read it, else why not (one line)."""
    with images.pillow_warnings():
        return None if _decodes_quickly(os.fspath(path)) else _reason(os.fspath(path))


def scan_readable(paths, workers=None, progress=None):
    """Decode every picture once, in a pool of threads (Pillow releases the GIL while it decodes): `Scan`.

    The fast decode decides; a picture it fails on is read again by `images.load_image` (in this thread, after
    the pool), whose message naming the file and what to do is the reason, so both agree on what is readable.
    `workers`: threads (default: the CPU count); `progress`: an object with update() and close() (default: a
    bar on stderr, drawn only on a terminal).
    """
    paths = [os.fspath(path) for path in paths]
    bar = progress if progress is not None else Progress(len(paths), "checking pictures", unit="img")
    failed = []
    try:
        with images.pillow_warnings(), ThreadPoolExecutor(max_workers=max(1, workers or os.cpu_count() or 1)) as pool:
            for path, decodes in zip(paths, pool.map(_decodes_quickly, paths)):
                if not decodes:
                    failed.append(path)
                bar.update()
    finally:
        bar.close()
    reasons = {path: _reason(path) for path in failed}
    skipped = [(path, reasons[path]) for path in failed if reasons[path] is not None]
    readable = [path for path in paths if reasons.get(path) is None]
    return Scan(readable, skipped)


# --- splitting -----------------------------------------------------------------------------------------------

def fraction(value, option, error=None):
    """`value` (None: 0) as a share of the pictures, at least 0 and below 1; `error` (an EdgekitError class,
    TrainingDataError by default) naming `option` otherwise."""
    error = error or TrainingDataError
    if value is None:
        return 0.0
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise error(f"{option} must be a number at least 0 and below 1, not {value!r}") from None
    if not 0.0 <= value < 1.0:
        raise error(f"{option} must be at least 0 and below 1, not {value:g}")
    return value


def split_counts(count, fractions):
    """How many of `count` pictures of one class go to each split of `fractions` (val, then test), the rest
    being train: each requested split at least one, train at least one. None when `count` is too few."""
    wanted = [max(1, int(np.floor(count * f + 0.5))) if f > 0 else 0 for f in fractions]
    if count < 1 + sum(1 for f in fractions if f > 0):
        return None
    while sum(wanted) > count - 1:
        largest = int(np.argmax(wanted))
        wanted[largest] -= 1
    return wanted


def _class_rng(seed, name):
    """The random generator of one class: derived from the seed and the class name only, so the split of a
    class does not change when other classes are added or removed."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def _too_few_message(source, name, count, requested):
    parts = " and ".join(requested)
    needed = 1 + len(requested)
    each = ", ".join(["train"] + list(requested[:-1])) + " and " + requested[-1]
    return (f"{source}: class '{name}' has {_counted(count, 'readable picture')}, too few to split "
            f"off {parts}: that needs at least {needed} per class (one each for {each}): add pictures, give "
            f"--{'/--'.join(requested)} data, or set --{'-split/--'.join(requested)}-split to 0")


def stratified_split(paths, labels, fractions, seed, source):
    """Split pictures per class: {split name: ([paths], [labels])} for "train" and each split of `fractions`
    ({"val": f, "test": f}, those above 0). Seeded per class; each class keeps its pictures' given order
    within each split."""
    requested = [name for name, f in fractions.items() if f > 0]
    by_class = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    chosen = {}
    for name in sorted(by_class):
        members = by_class[name]
        counts = split_counts(len(members), [fractions[split] for split in requested])
        if counts is None:
            raise TrainingDataError(_too_few_message(source, name, len(members), requested))
        shuffled = _class_rng(seed, name).permutation(len(members))
        start = 0
        for split, count in zip(requested, counts):
            for position in shuffled[start:start + count]:
                chosen[members[position]] = split
            start += count
    result = {split: ([], []) for split in ["train"] + requested}
    for index, (path, label) in enumerate(zip(paths, labels)):
        target = result[chosen.get(index, "train")]
        target[0].append(path)
        target[1].append(label)
    return result


def _subset(pairs, class_names):
    paths, labels = pairs
    index = {name: k for k, name in enumerate(class_names)}
    return Subset(list(paths), np.array([index[label] for label in labels], dtype=np.int64))


def class_counts(subset, num_classes):
    """Pictures per class of `subset`: np.int64 [num_classes] (zero for a class it lacks)."""
    return np.bincount(np.asarray(subset.labels, dtype=np.int64), minlength=num_classes).astype(np.int64)


def _check_readable(labelled, scan, role):
    """The readable pictures of `labelled` (`Kept`); an error when most cannot be read or when a class of the
    training data is left with none."""
    bad = {path: reason for path, reason in scan.skipped}
    notes = []
    unreadable = [path for path in labelled.paths if path in bad]
    if unreadable:
        first = bad[unreadable[0]]
        total = len(labelled.paths)
        if len(unreadable) > MOST_UNREADABLE * total:
            raise TrainingDataError(f"{labelled.source}: {len(unreadable)} of its {total} pictures cannot be read "
                                    f"(first: {first}): check that these are pictures and were copied whole")
        notes.append(f"{labelled.source}: {len(unreadable)} of {total} pictures skipped as unreadable "
                     f"(first: {first})")
    if role == "train" and unreadable:
        members, lost = {}, {}
        for path, label in zip(labelled.paths, labelled.labels):
            members[label] = members.get(label, 0) + 1
            if path in bad:
                lost.setdefault(label, []).append(path)
        for name in sorted(lost):
            if len(lost[name]) == members[name]:
                raise TrainingDataError(f"{labelled.source}: class '{name}' has no readable picture "
                                        f"({len(lost[name])} skipped, first: {bad[lost[name][0]]}): replace its "
                                        "pictures")
    keep = [k for k, path in enumerate(labelled.paths) if path not in bad]
    splits = None if labelled.splits is None else [labelled.splits[k] for k in keep]
    return Kept([labelled.paths[k] for k in keep], [labelled.labels[k] for k in keep], splits, notes)


def _check_labels(source, labels, class_names, role, owner="training"):
    """Errors for labels that `class_names` (the `owner`'s: the training data's or a model's) lack; warnings
    for those of its classes that `role` lacks."""
    present = set(labels)
    unknown = sorted(present - set(class_names))
    if unknown:
        whose = "the training data's" if owner == "training" else f"the {owner}'s"
        raise TrainingDataError(f"{source}: {role} labels not among the {owner} classes: "
                                f"{', '.join(repr(name) for name in unknown)} ({owner} has "
                                f"{', '.join(class_names)}): use {whose} class names")
    absent = [name for name in class_names if name not in present]
    if absent:
        return [f"{source}: no {role} pictures of class{'es' if len(absent) > 1 else ''} "
                f"{', '.join(repr(name) for name in absent)}: {role} scores leave "
                f"{'them' if len(absent) > 1 else 'it'} out"]
    return []


def make_splits(data, val=None, val_split=VAL_SPLIT, test=None, test_split=TEST_SPLIT, seed=0, progress=None,
                workers=None):
    """Read, check and split the labelled pictures (specs: folder or CSV paths): `Splits`.

    Explicit `val` / `test` data win over the CSV's split column, which wins over `val_split` / `test_split`
    (fractions of each class of `data`; 0 means no such split). A `val` / `test` CSV's own split column is
    not read: all its pictures are that split's. `seed` (an int >= 0) makes the split. Every problem that
    reading alone shows is raised before any picture is decoded.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TrainingDataError(f"--seed must be a whole number of at least 0, not {seed!r}")
    val_split = fraction(val_split, "--val-split")
    test_split = fraction(test_split, "--test-split")
    labelled = {"train": read_labelled(data)}
    for role, spec in (("val", val), ("test", test)):
        if spec is not None:
            labelled[role] = read_labelled(spec)
    source = labelled["train"]
    in_column = set(source.splits or ()) - {None}
    fractions = {role: fraction for role, fraction in (("val", val_split), ("test", test_split))
                 if role not in labelled and role not in in_column}
    if sum(fractions.values()) >= 1.0:
        raise TrainingDataError(f"--val-split {val_split:g} and --test-split {test_split:g} leave nothing to train "
                                "on: make their sum less than 1")
    training = sorted({label for label, split in zip(source.labels, source.splits or [None] * len(source.labels))
                       if split in (None, "train")})
    if not training:
        raise TrainingDataError(f"{data}: every picture is marked val or test in its split column: mark some "
                                "train, or leave their split empty")
    if len(training) < 2:
        raise TrainingDataError(f"{data}: only one class ('{training[0]}'): a classifier needs at least two "
                                "classes: add pictures of another class (a sub-folder, or CSV lines with another "
                                "label)")

    paths = [path for each in labelled.values() for path in each.paths]
    scan = scan_readable(list(dict.fromkeys(paths)), workers=workers, progress=progress)
    notes, kept = [], {}
    for role, each in labelled.items():
        kept[role] = _check_readable(each, scan, role)
        notes += each.warnings + kept[role].warnings

    train_paths, train_labels, column, _ = kept["train"]
    column = column or [None] * len(train_paths)
    # The CSV's split column: pictures it assigns stay where it puts them; the others are split by fractions.
    given = {role: ([p for p, s in zip(train_paths, column) if s == role],
                    [label for label, s in zip(train_labels, column) if s == role]) for role in SPLIT_NAMES}
    for role in ("val", "test"):
        if role in labelled and given[role][0]:
            marked = _counted(len(given[role][0]), "picture")
            notes.append(f"{data}: {marked} marked {role} in its split column ignored: --{role} "
                         f"{labelled[role].source} gives the {role} pictures")
    pool = [(p, label) for p, label, s in zip(train_paths, train_labels, column) if s is None]
    divided = stratified_split([p for p, _ in pool], [label for _, label in pool], fractions, seed, data)
    train = (given["train"][0] + divided["train"][0], given["train"][1] + divided["train"][1])
    class_names = sorted(set(train[1]))

    subsets = {"train": _subset(train, class_names)}
    for role in ("val", "test"):
        if role in labelled:
            pairs, named = (kept[role].paths, kept[role].labels), labelled[role].source
        elif role in in_column:
            pairs, named = given[role], f"{data} ({role} split)"
        elif role in divided:
            pairs, named = divided[role], None
        else:
            subsets[role] = None
            continue
        if named is not None:
            notes += _check_labels(named, pairs[1], class_names, role)
        subsets[role] = _subset(pairs, class_names)
    notes += _overlap_warnings(subsets)
    return Splits(subsets["train"], subsets["val"], subsets["test"], class_names, scan.skipped, notes)


def _overlap_warnings(subsets):
    """A warning for each of val / test that shares picture files with train: its scores would flatter."""
    train = {os.path.realpath(path) for path in subsets["train"].paths}
    notes = []
    for role in ("val", "test"):
        subset = subsets[role]
        if subset is None:
            continue
        shared = [path for path in subset.paths if os.path.realpath(path) in train]
        if shared:
            notes.append(f"{_counted(len(shared), role + ' picture')} also in the training data (first: "
                         f"{shared[0]}): {role} scores will look better than they are")
    return notes


def subset_for(spec, class_names, on_warning=None, progress=None, workers=None):
    """The readable pictures of a class folder or CSV file (its split column not read) as a `Subset` labelled
    by their index in `class_names` (a trained model's labels), for scoring the model on them.

    An error for labels the model lacks, or when most pictures cannot be read; each warning (pictures skipped,
    model classes with no pictures) goes to `on_warning` (a callable taking one line) when given.
    """
    class_names = list(class_names)
    labelled = read_labelled(spec)
    scan = scan_readable(labelled.paths, workers=workers, progress=progress)
    kept = _check_readable(labelled, scan, "evaluation")
    notes = labelled.warnings + kept.warnings
    notes += _check_labels(labelled.source, kept.labels, class_names, "evaluation", owner="model")
    if on_warning is not None:
        for line in notes:
            on_warning(line)
    return _subset((kept.paths, kept.labels), class_names)
