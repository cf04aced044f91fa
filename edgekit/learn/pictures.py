"""`edgekit learn`: new classes from folders of pictures, one sub-folder per class, on the board itself.

`imprint_folder` runs each picture through the imprinting model's extractor and imprints the classes;
`backprop_folder` runs them through an embedding extractor and trains a softmax layer on top. Both write
the new model atomically, with the class names in its metadata, and return what they did as a namedtuple.
The extractor runs where `edgekit run` would run it: an Edge TPU when the model is compiled and one is
attached, else the CPU (the compiled model's CPU twin), as `runtime.interpreter.open_model` decides.
"""

import os
import tempfile
import time
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.files import write_atomic
from edgekit.image_folders import list_images
from edgekit.learn.backprop.softmax_regression import SoftmaxRegression
from edgekit.learn.imprinting.engine import ImprintingEngine
from edgekit.progress import Progress
from edgekit.runtime.interpreter import cpu_twin_path, open_model, print_notice
from edgekit.runtime.pipeline import Runner
from edgekit.runtime.tasks import CLASSIFICATION
from edgekit.tflite.metadata import embed_metadata, read_edgekit_metadata, retasked
from edgekit.tflite.model import read_model

# A held-out share for backprop's validation accuracy, and the seed of that split and of SGD.
VAL_SPLIT = 0.2
SEED = 0
# Softmax regression's defaults for `edgekit learn backprop`. pycoral's example trains 500 iterations of
# batch 100 at rate 0.01 on its MobileNet embeddings (pycoral examples/backprop_last_layer.py); here 500
# passes over the pictures, so that a few shots a class still get 500 steps, and a tenfold rate: the
# EfficientNet-Lite extractors' pooled ReLU6 features are small and non-negative, and at 0.01 the layer is
# still far from trained after that many steps (benchmarks/bench_learn.py measures both).
EPOCHS = 500
LEARNING_RATE = 0.1
BATCH_SIZE = 100

ClassPictures = namedtuple("ClassPictures", "label paths")
"""One class of a picture folder: its name (the sub-folder's) and its picture paths, sorted."""

LearnedClass = namedtuple("LearnedClass", "id label pictures new")
"""A class of the written model that this run taught: its id, name, how many pictures, whether it is new."""

Imprinted = namedtuple("Imprinted", "model out twin classes num_classes pictures device extract_s learn_s "
                                    "serialize_s")
"""What `imprint_folder` did. model, out: the paths read and written; twin: the CPU twin written beside a
compiled `out` (None otherwise); classes: the LearnedClass of each taught class; num_classes: the classes of
the new model; pictures: how many were read; device: where the extractor ran; extract_s, learn_s,
serialize_s: seconds spent running the extractor, imprinting, and writing the model."""

Backprop = namedtuple("Backprop", "extractor out classes pictures device extract_s train_s iterations "
                                  "train_accuracy val_accuracy val_pictures")
"""What `backprop_folder` did. extractor, out: the paths read and written; classes: a LearnedClass per
class (all new); pictures: how many were read; device: where the extractor ran; extract_s, train_s: seconds;
iterations: SGD steps; train_accuracy, val_accuracy: on the embeddings (val_accuracy None without held-out
pictures); val_pictures: how many were held out."""


def class_folders(folder):
    """The `ClassPictures` of each sub-folder of `folder` that holds pictures, by name."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise EdgekitError(f"{folder}: not a folder; --data takes a folder with one sub-folder of pictures per "
                           "class")
    classes = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        pictures = list_images(path)
        if pictures:
            classes.append(ClassPictures(name, pictures))
    if not classes:
        raise EdgekitError(f"{folder}: no sub-folder with pictures; --data takes a folder with one sub-folder "
                           "of pictures per class (cat/1.jpg, dog/2.jpg, ...)")
    return classes


def _check_out(model, out):
    if os.path.abspath(os.fspath(model)) == os.path.abspath(os.fspath(out)) or (
            os.path.exists(out) and os.path.samefile(model, out)):
        raise EdgekitError(f"--out {out} is the input model, which edgekit never overwrites: give another file")


class _Extractor:
    """An embedding extractor opened like any model (an Edge TPU or the CPU): the file at `path`, or, given
    `extractor_bytes` (an extractor cut from a model in memory), those bytes written as `path`'s name in a
    scratch folder, with `twin_bytes` beside them as its CPU twin."""

    def __init__(self, path, extractor_bytes=None, twin_bytes=None, device="auto", threads=None,
                 notice=print_notice):
        self._scratch = None
        if extractor_bytes is not None:
            self._scratch = tempfile.TemporaryDirectory(prefix="edgekit-learn-")
            path = os.path.join(self._scratch.name, os.path.basename(os.fspath(path)))
            write_atomic(path, extractor_bytes)
            if twin_bytes is not None:
                # Beside the compiled extractor under the twin's name, so that open_model falls back to it.
                write_atomic(cpu_twin_path(read_model(path)), twin_bytes)
        opened = open_model(os.fspath(path), device=device, num_threads=threads, notice=notice)
        self.runner = Runner(opened, task=CLASSIFICATION, top_k=1)
        self.device = opened.device

    def embeddings(self, paths, label="embeddings"):
        """The dequantized embedding of each picture, (n, D)."""
        rows = []
        with Progress(len(paths), label, unit="img") as progress:
            for result in self.runner.run_images(paths):
                rows.append(np.asarray(result.scores, np.float64).ravel())
                progress.update()
        return np.stack(rows)

    def close(self):
        if self._scratch is not None:
            self._scratch.cleanup()


def _engines(model, keep_classes):
    """The engine of `model`, and one of its CPU twin when `model` is compiled and the twin is there."""
    engine = ImprintingEngine(model, keep_classes=keep_classes)
    parsed = read_model(model)
    twin = cpu_twin_path(parsed) if parsed.is_edgetpu_compiled else None
    twin_engine = ImprintingEngine(twin, keep_classes=keep_classes) if twin and os.path.isfile(twin) else None
    return engine, twin_engine


def _twin_name(out):
    """The CPU twin's name for a compiled model written to `out` (pycoral's `_edgetpu` naming), or None when
    `out` does not follow it (the twin would take `out`'s own name)."""
    stem, ext = os.path.splitext(os.fspath(out))
    return stem[: -len("_edgetpu")] + ext if stem.endswith("_edgetpu") else None


def imprint_folder(model, data, out, keep_classes=False, device="auto", threads=None, notice=print_notice):
    """Imprint the classes of picture folder `data` into imprinting model `model`, write the result to `out`.

    A class whose name is already an imprinted class of the model (kept with `keep_classes`) gets more
    pictures; other names become new classes after the existing ones. A compiled model is imprinted in its
    Edge TPU form and, when its CPU twin lies beside it and `out` ends in `_edgetpu.tflite`, the twin is
    imprinted alike and written beside `out` without that ending.
    """
    _check_out(model, out)
    classes = class_folders(data)
    engine, twin_engine = _engines(model, keep_classes)
    twin_out = _twin_name(out) if twin_engine else None
    if twin_out is None:
        twin_engine = None
    extractor = _Extractor(model, engine.serialize_extractor_model(),
                           twin_engine.serialize_extractor_model() if twin_engine else None, device, threads, notice)
    try:
        start = time.perf_counter()
        embeddings = [extractor.embeddings(c.paths, f"{c.label}") for c in classes]
        extract_s = time.perf_counter() - start
    finally:
        extractor.close()
    start = time.perf_counter()
    held = {label: i for i, label in enumerate(engine.labels)}
    taught = []
    for folder, rows in zip(classes, embeddings):
        class_id = held.get(folder.label, engine.num_classes)
        new = class_id == engine.num_classes
        for target in (engine, twin_engine):
            for row in rows if target else ():
                target.train(row, class_id, label=folder.label)
        held[folder.label] = class_id
        taught.append(LearnedClass(class_id, folder.label, len(rows), new))
    learn_s = time.perf_counter() - start
    start = time.perf_counter()
    write_atomic(out, engine.serialize_model())
    if twin_engine:
        write_atomic(twin_out, twin_engine.serialize_model())
    serialize_s = time.perf_counter() - start
    return Imprinted(os.fspath(model), os.fspath(out), twin_out, taught, engine.num_classes,
                     sum(len(c.paths) for c in classes), extractor.device, round(extract_s, 3), round(learn_s, 4),
                     round(serialize_s, 4))


def held_out(labels, share, seed):
    """A boolean mask of the pictures kept for validation: `share` of each class, rounded down, never a
    class's last picture."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(int(len(members) * share), len(members) - 1)
        mask[rng.permutation(members)[:count]] = True
    return mask


def backprop_folder(extractor, data, out, epochs=EPOCHS, learning_rate=LEARNING_RATE, batch_size=BATCH_SIZE,
                    val_split=VAL_SPLIT, seed=SEED, device="auto", threads=None, notice=print_notice):
    """Train a softmax layer on the embeddings of picture folder `data` (a class per sub-folder) and write
    `extractor` with it appended to `out`, the class names in its metadata."""
    _check_out(extractor, out)
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise EdgekitError("--epochs and --batch-size must be 1 or more and --lr positive")
    if not 0 <= val_split < 1:
        raise EdgekitError(f"--val-split must be at least 0 and below 1, not {val_split}")
    classes = class_folders(data)
    if len(classes) < 2:
        raise EdgekitError(f"{data}: only one class ({classes[0].label}); backprop needs at least two classes, "
                           "one sub-folder each")
    opened_from = os.fspath(extractor)
    # Opened where it lies: open_model finds a compiled extractor's CPU twin beside it by itself.
    runner = _Extractor(opened_from, device=device, threads=threads, notice=notice)
    try:
        start = time.perf_counter()
        features = np.concatenate([runner.embeddings(c.paths, c.label) for c in classes])
        extract_s = time.perf_counter() - start
    finally:
        runner.close()
    labels = np.concatenate([np.full(len(c.paths), i) for i, c in enumerate(classes)])
    val = held_out(labels, val_split, seed)
    model = SoftmaxRegression(features.shape[1], len(classes), seed=seed)
    per_epoch = max(1, -(-int((~val).sum()) // batch_size))
    iterations = epochs * per_epoch
    data_sets = {"data_train": features[~val], "labels_train": labels[~val], "data_val": features[val],
                 "labels_val": labels[val]}
    start = time.perf_counter()
    model.train_with_sgd(data_sets, iterations, learning_rate, batch_size=batch_size, print_every=0)
    train_s = time.perf_counter() - start
    written = model.serialize_model(opened_from)
    metadata = retasked(read_edgekit_metadata(read_model(opened_from)), CLASSIFICATION, [c.label for c in classes])
    write_atomic(out, embed_metadata(written, metadata))
    return Backprop(opened_from, os.fspath(out),
                    [LearnedClass(i, c.label, len(c.paths), True) for i, c in enumerate(classes)], len(labels),
                    runner.device, round(extract_s, 3), round(train_s, 3), iterations,
                    model.get_accuracy(features[~val], labels[~val]),
                    model.get_accuracy(features[val], labels[val]) if val.any() else None, int(val.sum()))
