"""`edgekit train` on the CPU: training speed against its floors, the recipe against Model Maker's, and memory.

Every figure is a ratio against a baseline measured in the same run (issue 12), each part in its own process
so that its peak memory (ru_maxrss) is its own; TensorFlow's import is never timed. Beside wall time, each part
reports the CPU seconds its process used (all threads): on a machine shared with other work, wall time grows
with their load while CPU seconds barely do, so the CPU ratios tell a busy spell from a slow part.

1. Head-only (the default recipe) on `--pictures` real pictures (sklearn's digits upscaled, scikit-image's
   LFW faces and non-faces, crops of scikit-image's photos: 16 balanced classes) written as JPEG files.
   Baseline A, the floor once features are cached: one forward pass of the Lite0 backbone
   (`image_classifier.backbone_for`) over the same pictures already decoded in memory as one float tensor
   (`model.predict`, batch 32). Measured: `edgekit.train.image_classifier(folder)` from the folder to its
   test scores, wall time (target <= 1.3x baseline A), with its own timings; the export (int8 conversion and
   int8 scoring, not compiled) is timed apart. The two alternate for `--rounds` rounds, best of each kept.
   Also what an epoch of the head could cost on the cached features: recipe.HEAD_ONLY's epochs as one `fit`
   call, and as one tf.function call per epoch.
2. Baseline B, Model Maker's way: recipe.MODEL_MAKER (5 fixed epochs) with the frozen backbone run over the
   pictures every epoch (one Keras model backbone + head, fit on the tf.data pipeline, validated every epoch
   as Model Maker's `create` does), from the folder to its test scores; its time against ours, and both test
   accuracies on the same split.
3. Fine-tune: seconds per step of the whole network (batch-norm frozen, as recipe.FINE_TUNE) fed by our
   pipeline (`picture_batches`: decode, random resized crop, flip, from disk) against bare `model.fit` on the
   same pictures already in memory as tensors, same model and batch; blocks of steps alternate so that drift
   on a shared machine falls on both. A step is the time between the ends of consecutive batches, so a
   pipeline that cannot keep up shows; each block's first step (tf.data start-up) is left out.
   Target <= 1.15x. Peak memory is printed before and after the in-memory tensor exists.
4. Memory: `input_data.image_dataset` streaming small pictures from disk into a tiny model's `fit` for one
   epoch, 2,000 and then 20,000 pictures, each in a fresh process: peak RSS of both (target: 20,000 /
   2,000 <= 1.1, flat).

5. Detector step (issue 13): EfficientDet-Lite0's training step as `edgekit train efficientdet-lite0` runs it
   (recipe.DETECTOR: the whole network, backbone batch norm frozen) fed by `box_input.box_dataset` (decode, scale
   jitter, flip, anchor matching) against bare `fit` on the same pictures and targets in memory, on a composite
   set of `tests/training/box_sets.py`; alternating blocks as in part 3. Target <= 1.15x.

TensorFlow's op determinism is on in every part, as `train_run` turns it on, so no part gains from it.
Prints one JSON document on stdout (`ratios`: value, target, met) and exits 0: it reports, it does not judge.

    .venv/bin/python benchmarks/bench_train.py [--quick] [--pictures 1000] [--size 224] [--skip PART ...]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import namedtuple

import numpy as np

from shared_testdata import ROOT

sys.path.insert(0, str(ROOT / "tests" / "training"))

from box_sets import composite_set  # noqa: E402
from picture_sets import PHOTOS, digits_folder, photo, photo_folder, random_crops  # noqa: E402

MODEL = "efficientnet-lite0"
WEIGHTS = "imagenet"
SEED = 0
# The targets: head-only total against one forward pass; a fine-tune step fed from disk against one fed
# from memory; peak memory streaming ten times the pictures against the smaller run.
TARGET_HEAD_ONLY = 1.3
TARGET_FINE_TUNE_STEP = 1.15
TARGET_MEMORY = 1.1
# Issue 13: a detector's training step fed by its pipeline against bare fit on in-memory tensors.
TARGET_DETECTOR_STEP = 1.15
DETECTOR = "efficientdet-lite0"
# The forward pass's batch (the baseline A) and the tiny streaming model's.
PREDICT_BATCH = 32
STREAM_BATCH = 64
# The training pictures' classes: ten digits, faces and non-faces, and one class per photo.
DIGITS = 10
FACE_CLASSES = ("face", "not_face")
# skimage.data.lfw_subset: the first 100 pictures are faces, the other 100 are not (its docstring).
FACES_EACH = 100
CLASSES = DIGITS + len(FACE_CLASSES) + len(PHOTOS)

FULL = dict(pictures=1000, size=224, rounds=2, fine_tune_steps=20, fine_tune_blocks=2, stream_small=2000,
            stream_large=20000, stream_size=64, detector_size=320, detector_steps=20)
QUICK = dict(pictures=320, size=128, rounds=1, fine_tune_steps=6, fine_tune_blocks=2, stream_small=500,
             stream_large=5000, stream_size=64, detector_size=128, detector_steps=6)
PARTS = ("forward", "edgekit", "model_maker", "fine_tune", "memory", "detector_step")


# --- measuring -----------------------------------------------------------------------------------------------

def peak_mib():
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds():
    """CPU seconds this process has used so far, all its threads (tf.data's and TensorFlow's) included: unlike
    wall time, it does not grow when other processes take the cores."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def resident_mib():
    """This process's resident memory now (VmRSS), or None where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def ratio(value, baseline, target):
    """{"value", "target", "met"} of value / baseline against `target` (an upper bound; None: none set)."""
    if value is None or not baseline:
        return {"value": None, "target": target, "met": False if target else None}
    quotient = round(value / baseline, 3)
    return {"value": quotient, "target": target, "met": quotient <= target if target else None}


def deterministic_tensorflow():
    """Seeds and op determinism as `image_classifier.train_run` sets them, for every part alike."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()


# --- the pictures --------------------------------------------------------------------------------------------

def class_counts(total):
    """Pictures per class for `total` pictures over CLASSES classes, differing by at most one."""
    each, extra = divmod(total, CLASSES)
    return [each + (1 if k < extra else 0) for k in range(CLASSES)]


def write_faces(root, counts, size):
    """The first counts[0] faces and counts[1] non-faces of scikit-image's LFW subset, grey as RGB JPEGs."""
    from PIL import Image
    from skimage import data

    pictures = data.lfw_subset()
    if pictures.dtype != np.uint8:      # it loads as float64 in 0..1 although its docstring says uint8
        pictures = np.round(np.clip(pictures, 0.0, 1.0) * 255.0).astype(np.uint8)
    for name, first, count in zip(FACE_CLASSES, (0, FACES_EACH), counts):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(count):
            grey = Image.fromarray(pictures[first + k]).resize((size, size), Image.Resampling.BILINEAR)
            grey.convert("RGB").save(os.path.join(root, name, f"{k:03d}.jpg"), "JPEG", quality=95)


def training_folder(root, total, size):
    """`total` JPEGs of `size` px under `root`/<class>/, CLASSES classes balanced to within one picture."""
    from PIL import Image

    counts = class_counts(total)
    if max(counts[DIGITS:DIGITS + 2]) > FACES_EACH:
        raise SystemExit(f"--pictures {total}: the LFW subset has {FACES_EACH} faces; use at most "
                         f"{FACES_EACH * CLASSES}")
    # load_digits has at least 174 pictures of each digit; a smaller class count keeps every class the same.
    digits_folder(root, per_class=min(counts[:DIGITS]), classes=DIGITS, size=size, fmt="jpg", seed=SEED)
    for digit in range(DIGITS):
        if counts[digit] > min(counts[:DIGITS]):
            # One more picture for the first classes: a horizontally mirrored copy of that class's first one.
            folder = os.path.join(root, str(digit))
            first = sorted(os.listdir(folder))[0]
            Image.open(os.path.join(folder, first)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
                os.path.join(folder, "mirrored.jpg"), "JPEG", quality=95)
    write_faces(root, counts[DIGITS:DIGITS + 2], size)
    for number, name in enumerate(PHOTOS):
        photo_folder(root, classes=(name,), per_class=counts[DIGITS + 2 + number], size=size, fmt="jpg",
                     seed=SEED + 1 + number)
    return root


def streaming_folder(root, total, size):
    """`total` random crops of scikit-image's photos as `size` px JPEGs under `root`/<photo>/ (the memory part)."""
    from PIL import Image

    each = -(-total // len(PHOTOS))
    for number, name in enumerate(PHOTOS):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        pixels = photo(name)
        for start in range(0, each, 1000):
            crops = random_crops(pixels, min(1000, each - start), size, seed=SEED * 1000 + number * 100 + start)
            for k, crop in enumerate(crops):
                Image.fromarray(crop).save(os.path.join(root, name, f"{start + k:05d}.jpg"), "JPEG", quality=90)
    return root


def interleaved_subset(root, count):
    """A labelled_data.Subset of the first `count` pictures of `root`, classes taken in turn."""
    from edgekit.training.labelled_data import Subset

    names = sorted(os.listdir(root))
    files = [sorted(os.listdir(os.path.join(root, name))) for name in names]
    paths, labels = [], []
    for k in range(max(len(f) for f in files)):
        for label, listed in enumerate(files):
            if k < len(listed) and len(paths) < count:
                paths.append(os.path.join(root, names[label], listed[k]))
                labels.append(label)
    return Subset(paths, np.asarray(labels, np.int64)), len(names)


# --- workers: each runs in its own process and prints one JSON line ------------------------------------------

def splits_of(folder):
    """The trainer's own split of `folder` (seeded, stratified, 80/10/10)."""
    from edgekit.training import labelled_data

    return labelled_data.make_splits(folder, seed=SEED)


def worker_forward(folder, size, with_head_floor):
    """Baseline A: the backbone's forward pass over every picture, decoded into memory beforehand."""
    from edgekit.image_folders import list_images
    from edgekit.training import image_classifier as trainer
    from edgekit.training import input_data, network

    deterministic_tensorflow()
    input_size = (int(size), int(size))
    begun = time.perf_counter()
    paths = list_images(folder)
    pixels = np.stack([input_data.load_pixels(p, input_size, trainer.RESIZE) for p in paths]).astype(np.float32)
    decoded = time.perf_counter() - begun
    begun = time.perf_counter()
    features, _ = network.backbone_for(MODEL, WEIGHTS, input_size)
    built = time.perf_counter() - begun
    begun, used = time.perf_counter(), cpu_seconds()
    found = features.predict(pixels, batch_size=PREDICT_BATCH, verbose=0)
    seconds, used = time.perf_counter() - begun, cpu_seconds() - used
    figures = {"seconds": round(seconds, 3), "cpu_seconds": round(used, 3), "pictures": len(paths),
               "pictures_per_s": round(len(paths) / seconds, 1), "feature_shape": list(found.shape),
               "decode_seconds": round(decoded, 3), "build_seconds": round(built, 3), "peak_mib": peak_mib()}
    if with_head_floor == "yes":
        figures["head_floor"] = head_floor(folder, dict(zip(paths, found)))
    return figures


def new_head(feature_size, classes):
    """The trainer's head (dropout, dense with L2, softmax) on pooled features, compiled as recipe.HEAD_ONLY."""
    import keras

    from edgekit.training import network, recipe

    inputs = keras.Input((feature_size,))
    passthrough = keras.Model(inputs, keras.layers.Identity()(inputs))
    return compiled(network.attach_head(passthrough, classes, recipe.HEAD_ONLY, "head", seed=SEED), recipe.HEAD_ONLY)


def head_floor(folder, features_of):
    """recipe.HEAD_ONLY's epochs of the head on the cached features of the trainer's split, validated every
    epoch, two ways: one `fit` call for all epochs, and one tf.function call per epoch (gradient steps and the
    validation loss inside the graph). What an epoch of the head costs without a `fit` and an `evaluate` call
    per epoch, and without Keras' per-epoch machinery at all."""
    from edgekit.training import image_classifier as trainer
    from edgekit.training import input_data, recipe

    splits = splits_of(folder)
    classes = len(splits.class_names)
    arrays = {}
    for name in ("train", "val"):
        subset = getattr(splits, name)
        arrays[name] = (np.stack([features_of[p] for p in subset.paths]), trainer.one_hot(subset.labels, classes))
    epochs, batch = recipe.HEAD_ONLY.epochs, recipe.HEAD_ONLY.batch_size
    head = new_head(arrays["train"][0].shape[1], classes)
    begun = time.perf_counter()
    head.fit(*arrays["train"], batch_size=batch, epochs=epochs, validation_data=arrays["val"], verbose=0)
    one_fit = time.perf_counter() - begun
    epoch_function = graph_epoch(new_head(arrays["train"][0].shape[1], classes), arrays["train"], arrays["val"],
                                 batch)
    begun = time.perf_counter()
    for epoch in range(epochs):
        epoch_function(input_data.epoch_order(len(arrays["train"][0]), SEED, epoch))
    in_graph = time.perf_counter() - begun
    return {"epochs": epochs, "one_fit_call_seconds": round(one_fit, 3),
            "one_fit_call_seconds_per_epoch": round(one_fit / epochs, 4),
            "tf_function_per_epoch_seconds": round(in_graph, 3),
            "tf_function_seconds_per_epoch": round(in_graph / epochs, 4)}


def graph_epoch(head, train, val, batch):
    """A tf.function: one epoch of SGD steps of `head` over `train` (features, one-hot) in the order it is
    given, then the validation loss on `val`, all in one graph."""
    import tensorflow as tf

    features, targets = (tf.constant(a) for a in train)
    val_features, val_targets = (tf.constant(a) for a in val)
    optimizer, loss = head.optimizer, head.loss
    optimizer.build(head.trainable_variables)
    steps = -(-int(features.shape[0]) // batch)

    @tf.function
    def epoch(order):
        for step in tf.range(steps):
            picked = order[step * batch:(step + 1) * batch]
            with tf.GradientTape() as tape:
                value = loss(tf.gather(targets, picked), head(tf.gather(features, picked), training=True))
                value += tf.add_n(head.losses)
            optimizer.apply_gradients(zip(tape.gradient(value, head.trainable_variables), head.trainable_variables))
        return loss(val_targets, head(val_features, training=False))

    return epoch


def worker_edgekit(folder, size, out_dir):
    """Ours: `edgekit.train.image_classifier` with its defaults (head only), then the export apart (none when
    `out_dir` is "-")."""
    from edgekit import train
    # The trainer's modules import TensorFlow; importing them here keeps that import out of the timed call.
    from edgekit.training import image_classifier, trained_classifier  # noqa: F401

    input_size = None if int(size) == 224 else int(size)
    begun, used = time.perf_counter(), cpu_seconds()
    result = train.image_classifier(folder, model=MODEL, input_size=input_size)
    seconds, used = time.perf_counter() - begun, cpu_seconds() - used
    head_rows = [row for row in result.history if row["phase"] == "head"]
    test, val = result.scores.get("test"), result.scores.get("val")
    figures = {"seconds": round(seconds, 3), "cpu_seconds": round(used, 3), "timings": dict(result.timings),
               "epochs_run": len(head_rows), "best_epoch": result.trained.best,
               "first_epoch_loss": head_rows[0]["loss"] if head_rows else None,
               "test_accuracy": test.accuracy if test else None, "val_accuracy": val.accuracy if val else None,
               "test_pictures": test.count if test else 0,
               "split": dict(train=len(result.trained.splits.train.paths), val=val.count if val else 0,
                             test=test.count if test else 0), "peak_mib": peak_mib()}
    if out_dir != "-":
        begun = time.perf_counter()
        exported = result.export(out_dir, compile=False)
        int8 = exported.document["metrics"].get("test", {}).get("int8") or {}
        figures["export"] = {"seconds": round(time.perf_counter() - begun, 3),
                             "timings": {k: result.timings[k] for k in ("convert", "evaluate_int8")
                                         if k in result.timings},
                             "int8_test_accuracy": int8.get("accuracy"), "peak_mib": peak_mib()}
    return figures


def compiled(model, phase_recipe):
    """`model` compiled as the recipe says: SGD with momentum at its constant rate, label-smoothed cross-entropy
    (a schedule changes the rate, not the cost of a step)."""
    import keras

    model.compile(optimizer=keras.optimizers.SGD(phase_recipe.learning_rate, momentum=phase_recipe.momentum),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=phase_recipe.label_smoothing),
                  metrics=["accuracy"])
    return model


def model_maker_model(num_classes, input_size):
    """Backbone + head as one Keras model, backbone frozen, compiled as recipe.MODEL_MAKER says."""
    from edgekit.training import network, recipe

    features, name = network.backbone_for(MODEL, WEIGHTS, input_size)
    model = network.attach_head(features, num_classes, recipe.MODEL_MAKER, name, seed=SEED)
    for layer in features.layers:
        layer.trainable = False
    return compiled(model, recipe.MODEL_MAKER)


def worker_model_maker(folder, size):
    """Baseline B: Model Maker's five epochs, the frozen backbone run over the pictures in every epoch."""
    from edgekit.training import image_classifier as trainer
    from edgekit.training import recipe

    deterministic_tensorflow()
    input_size = (int(size), int(size))
    begun, used = time.perf_counter(), cpu_seconds()
    splits = splits_of(folder)
    classes = len(splits.class_names)
    model = model_maker_model(classes, input_size)
    batch = recipe.MODEL_MAKER.batch_size
    epochs = []
    # Model Maker's image_classifier.create trains through TF Hub's make_image_classifier_lib.train_model
    # (use_hub_library=True, its default), which fits with validation_data: the validation pictures go through
    # the backbone after every epoch as well.
    for epoch in range(recipe.MODEL_MAKER.epochs):
        started = time.perf_counter()
        train = trainer.picture_batches(splits.train, input_size, classes, batch, SEED, epoch, True, False, None)
        val = trainer.picture_batches(splits.val, input_size, classes, batch, 0, 0, False, False, None)
        history = model.fit(train, validation_data=val, epochs=1, verbose=0).history
        epochs.append({"seconds": round(time.perf_counter() - started, 3), "loss": round(history["loss"][-1], 5),
                       "val_accuracy": round(history["val_accuracy"][-1], 5)})
    probabilities = trainer.predict_pictures(model, splits.test, input_size, batch)
    test = trainer.scores_of(probabilities, splits.test.labels, classes)
    seconds, used = time.perf_counter() - begun, cpu_seconds() - used
    return {"seconds": round(seconds, 3), "cpu_seconds": round(used, 3), "epochs": epochs,
            "test_accuracy": test.accuracy,
            "test_pictures": test.count, "val_accuracy": epochs[-1]["val_accuracy"] if epochs else None,
            "peak_mib": peak_mib()}


# seconds: of each step but the first; cpu_seconds: of the whole block, first step included; steps: all of them.
Block = namedtuple("Block", "seconds cpu_seconds steps")


def timed_block(fit):
    """A `Block` of `fit(callbacks)`: a step is the time between consecutive batch ends."""
    import keras

    ends = []

    class BatchEnds(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    used = cpu_seconds()
    fit([BatchEnds()])
    return Block(list(np.diff(ends)), cpu_seconds() - used, len(ends))


def alternated(runs, ours, bare, blocks):
    """`runs` ({"ours": [its first block], "bare": []}) after the bare feed's first block, then further blocks
    of each in turn up to `blocks` of both, so that a busy spell on the machine falls on both feeds."""
    runs["bare"].append(bare())
    for block in range(1, int(blocks)):
        runs["ours"].append(ours(block))
        runs["bare"].append(bare())
    return runs


def step_figures(runs, batch):
    """Seconds per step (mean, median, per block), pictures per second and CPU seconds per step of each feed."""
    figures = {}
    for name, blocks_run in runs.items():
        every = [t for block in blocks_run for t in block.seconds]
        figures[name] = {"seconds_per_step": round(float(np.mean(every)), 4),
                         "median_seconds_per_step": round(float(np.median(every)), 4),
                         "pictures_per_s": round(batch / float(np.mean(every)), 2), "steps": len(every),
                         "per_block_seconds_per_step": [round(float(np.mean(b.seconds)), 4) for b in blocks_run],
                         "cpu_seconds_per_step": round(sum(b.cpu_seconds for b in blocks_run)
                                                       / sum(b.steps for b in blocks_run), 4)}
    return figures


def fine_tune_model(num_classes, input_size):
    """The whole network as the fine-tune phase trains it: batch norm frozen, recipe.FINE_TUNE's drop-connect
    rate, SGD at its rate."""
    import keras

    from edgekit.training import network, recipe

    features, name = network.backbone_for(MODEL, WEIGHTS, input_size)
    model = network.attach_head(features, num_classes, recipe.FINE_TUNE, name, seed=SEED)
    for layer in model.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    # The phase's stochastic-depth rate, set as train_run sets it (a rate of 0 skips those layers' work).
    network.set_drop_connect(features, recipe.FINE_TUNE.drop_connect)
    return compiled(model, recipe.FINE_TUNE)


def worker_fine_tune(folder, size, steps, blocks):
    """Fine-tune steps fed by our pipeline against bare `fit` on in-memory tensors, alternating blocks."""
    import tensorflow as tf

    from edgekit.training import image_classifier as trainer
    from edgekit.training import input_data, recipe

    deterministic_tensorflow()
    input_size = (int(size), int(size))
    splits = splits_of(folder)
    classes = len(splits.class_names)
    batch = recipe.FINE_TUNE.batch_size
    per_block = max(1, int(steps) // int(blocks))
    model = fine_tune_model(classes, input_size)

    def ours(epoch):
        # The pipeline the fine-tune phase fits on (augmentation on, as recipe.FINE_TUNE), one more batch than
        # timed: the first step waits for tf.data to start.
        dataset = trainer.picture_batches(splits.train, input_size, classes, batch, SEED, epoch, True,
                                          recipe.FINE_TUNE.augment, None,
                                          crop_area=recipe.FINE_TUNE.crop_area).take(per_block + 1)
        return timed_block(lambda callbacks: model.fit(dataset, epochs=1, verbose=0, callbacks=callbacks))

    # Tracing the train step happens once per model, in the warm-up, whichever feed comes first.
    warm = trainer.picture_batches(splits.train, input_size, classes, batch, SEED, 99, True, False, None).take(2)
    model.fit(warm, epochs=1, verbose=0)
    runs = {"ours": [ours(0)], "bare": []}
    streaming_peak = peak_mib()
    # The same pictures the first block of ours read, decoded once (no augmentation) and kept as tensors.
    order = input_data.epoch_order(len(splits.train.paths), SEED, 0)[:(per_block + 1) * batch]
    pixels = tf.constant(np.stack([input_data.load_pixels(splits.train.paths[i], input_size, trainer.RESIZE)
                                   for i in order]).astype(np.float32))
    labels = tf.constant(trainer.one_hot(splits.train.labels[order], classes))

    def bare():
        return timed_block(lambda callbacks: model.fit(pixels, labels, batch_size=batch, epochs=1, shuffle=False,
                                                       verbose=0, callbacks=callbacks))

    figures = step_figures(alternated(runs, ours, bare, blocks), batch)
    return {**figures, "batch": batch, "augment": recipe.FINE_TUNE.augment, "crop_area": recipe.FINE_TUNE.crop_area,
            "peak_mib_streaming": streaming_peak, "peak_mib_with_in_memory_tensor": peak_mib(),
            "in_memory_tensor_mib": round(int(np.prod(pixels.shape)) * 4 / 2 ** 20, 1)}


def worker_stream(folder, count, size):
    """Peak memory of streaming `count` pictures from disk through image_dataset into a tiny model, one epoch."""
    import keras

    from edgekit.training import input_data

    deterministic_tensorflow()
    subset, classes = interleaved_subset(folder, int(count))
    size = int(size)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    before = resident_mib()
    begun = time.perf_counter()
    dataset = input_data.image_dataset(subset, (size, size), classes, STREAM_BATCH, seed=SEED, shuffle=True)
    model.fit(dataset, epochs=1, verbose=0)
    seconds = time.perf_counter() - begun
    peak = peak_mib()
    return {"pictures": len(subset.paths), "seconds": round(seconds, 3),
            "pictures_per_s": round(len(subset.paths) / seconds, 1), "resident_mib_before": before,
            "resident_mib_after": resident_mib(), "peak_mib": peak,
            "growth_mib": round(peak - before, 1) if before is not None else None,
            "all_in_memory_would_take_mib": round(len(subset.paths) * size * size * 3 * 4 / 2 ** 20, 1)}


def worker_detector_step(folder, size, steps, blocks):
    """Detector training steps (the default recipe: the whole network, backbone batch norm frozen) fed by
    `box_input.box_dataset` (decode, scale jitter, flip, anchor matching) against bare `fit` on the same pictures'
    pixels and targets held in memory, alternating blocks; as worker_fine_tune."""
    import math

    import tensorflow as tf

    from edgekit.training import box_input, labelled_boxes, object_detector, recipe

    deterministic_tensorflow()
    splits = labelled_boxes.read_boxes(folder, val_split=0.0, test_split=0.0)
    settings = object_detector.Settings(DETECTOR, "imagenet", (int(size), int(size)), dict(recipe.DETECTOR._asdict()),
                                        SEED)
    batch = recipe.DETECTOR.batch_size
    per_block = max(1, int(steps) // int(blocks))
    model = object_detector.build(settings, len(splits.class_names))
    object_detector.compile_for_training(model, recipe.DETECTOR, math.ceil(len(splits.train) / batch),
                                         len(splits.class_names))
    input_size, anchors = (int(size), int(size)), model.edgekit_anchors

    def pipeline(epoch, count, jitter=tuple(recipe.DETECTOR.jitter), flip=recipe.DETECTOR.flip):
        return box_input.box_dataset(splits.train, input_size, anchors, batch, SEED, epoch, True, jitter,
                                     flip).take(count)

    def ours(epoch):
        dataset = pipeline(epoch, per_block + 1)
        return timed_block(lambda callbacks: model.fit(dataset, epochs=1, verbose=0, callbacks=callbacks))

    model.fit(pipeline(99, 2), epochs=1, verbose=0)
    runs = {"ours": [ours(0)], "bare": []}
    streaming_peak = peak_mib()
    held = list(pipeline(0, per_block + 1, None, False))
    pixels = tf.concat([x for x, _ in held], 0)
    box_targets = tf.concat([y[0] for _, y in held], 0)
    class_targets = tf.concat([y[1] for _, y in held], 0)

    def bare():
        return timed_block(lambda callbacks: model.fit(pixels, (box_targets, class_targets), batch_size=batch,
                                                       epochs=1, shuffle=False, verbose=0, callbacks=callbacks))

    figures = step_figures(alternated(runs, ours, bare, blocks), batch)
    return {**figures, "batch": batch, "size": int(size), "jitter": recipe.DETECTOR.jitter,
            "peak_mib_streaming": streaming_peak, "peak_mib_with_in_memory_tensor": peak_mib()}


WORKERS = {"forward": worker_forward, "edgekit": worker_edgekit, "model_maker": worker_model_maker,
           "fine_tune": worker_fine_tune, "stream": worker_stream, "detector_step": worker_detector_step}


def run_worker(*args):
    """One worker's figures, with the machine's load average when it started (other processes' share)."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    load = round(os.getloadavg()[0], 2)
    done = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)], cwd=ROOT, env=environment,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": f"worker {args[0]} failed (exit {done.returncode})", "stderr": done.stderr[-2000:]}
    return dict(json.loads(lines[-1]), load_average_at_start=load)


def best_of(runs):
    """The first round's figures with the lowest wall and CPU seconds (and timings) of all rounds: other
    processes on the machine only ever add time. Each round's own figures are kept under "rounds"."""
    good = [run for run in runs if "error" not in run]
    if not good:
        return runs[0]
    best = dict(good[0])
    for key in ("seconds", "cpu_seconds"):
        best[key] = min(run[key] for run in good)
    if "timings" in best:
        best["timings"] = {k: min(run["timings"][k] for run in good if k in run["timings"]) for k in best["timings"]}
    best["rounds"] = [{k: run.get(k) for k in ("seconds", "cpu_seconds", "load_average_at_start", "test_accuracy",
                                               "error") if k in run} for run in runs]
    return best


# --- the report ----------------------------------------------------------------------------------------------

def ratios_of(report):
    """Each ratio with its target, from the parts that ran."""
    def get(part, *keys):
        value = report.get(part)
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    found = {}
    if "edgekit" in report or "forward" in report:
        found["head_only_vs_forward_pass"] = ratio(get("edgekit", "seconds"), get("forward", "seconds"),
                                                   TARGET_HEAD_ONLY)
        found["head_only_vs_forward_pass_cpu_seconds"] = ratio(get("edgekit", "cpu_seconds"),
                                                               get("forward", "cpu_seconds"), None)
        found["head_only_features_vs_forward_pass"] = ratio(get("edgekit", "timings", "features"),
                                                            get("forward", "seconds"), None)
    epochs = get("edgekit", "epochs_run")
    ours_per_epoch = get("edgekit", "timings", "head") / epochs if epochs else None
    if ours_per_epoch is not None:
        found["head_epoch_vs_one_fit_call"] = ratio(
            ours_per_epoch, get("forward", "head_floor", "one_fit_call_seconds_per_epoch"), None)
        found["head_epoch_vs_tf_function_epoch"] = ratio(
            ours_per_epoch, get("forward", "head_floor", "tf_function_seconds_per_epoch"), None)
    if "model_maker" in report:
        found["model_maker_vs_head_only"] = ratio(get("model_maker", "seconds"), get("edgekit", "seconds"), None)
        found["model_maker_vs_head_only_cpu_seconds"] = ratio(get("model_maker", "cpu_seconds"),
                                                              get("edgekit", "cpu_seconds"), None)
        found["model_maker_vs_forward_pass"] = ratio(get("model_maker", "seconds"), get("forward", "seconds"), None)
    if "fine_tune" in report:
        found["fine_tune_step_vs_bare_fit"] = ratio(get("fine_tune", "ours", "seconds_per_step"),
                                                    get("fine_tune", "bare", "seconds_per_step"),
                                                    TARGET_FINE_TUNE_STEP)
        found["fine_tune_step_vs_bare_fit_cpu_seconds"] = ratio(get("fine_tune", "ours", "cpu_seconds_per_step"),
                                                                get("fine_tune", "bare", "cpu_seconds_per_step"),
                                                                None)
    if "detector_step" in report:
        found["detector_step_vs_bare_fit"] = ratio(get("detector_step", "ours", "seconds_per_step"),
                                                   get("detector_step", "bare", "seconds_per_step"),
                                                   TARGET_DETECTOR_STEP)
        found["detector_step_vs_bare_fit_cpu_seconds"] = ratio(
            get("detector_step", "ours", "cpu_seconds_per_step"), get("detector_step", "bare", "cpu_seconds_per_step"),
            None)
    if "memory" in report:
        small, large = get("memory", "small", "peak_mib"), get("memory", "large", "peak_mib")
        found["peak_memory_large_vs_small"] = ratio(large, small, TARGET_MEMORY)
        # The peaks include TensorFlow's own resident memory; the growth during the epoch is what streaming adds.
        found["memory_growth_large_vs_small"] = ratio(get("memory", "large", "growth_mib"),
                                                      get("memory", "small", "growth_mib"), None)
    return found


def summary_lines(report):
    lines = []
    for name, found in report["ratios"].items():
        target = f" (target <= {found['target']}x: {'met' if found['met'] else 'missed'})" if found["target"] else ""
        lines.append(f"{name}: {found['value']}x{target}")
    accuracy = report.get("recipe_comparison")
    if accuracy:
        lines.append(f"test accuracy: ours {accuracy['ours_test_accuracy']}, Model Maker's 5 epochs "
                     f"{accuracy['model_maker_test_accuracy']} ({accuracy['test_pictures']} test pictures)")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: " + ", ".join(
        f"{k.replace('_', '-')} {v}" for k, v in QUICK.items()))
    parser.add_argument("--pictures", type=int, help=f"training pictures [{FULL['pictures']}]")
    parser.add_argument("--size", type=int, help=f"picture and model input size [{FULL['size']}]")
    parser.add_argument("--rounds", type=int, help=f"alternating rounds of baseline A and ours [{FULL['rounds']}]")
    parser.add_argument("--fine-tune-steps", type=int, help=f"timed steps per feed [{FULL['fine_tune_steps']}]")
    parser.add_argument("--fine-tune-blocks", type=int, help=f"alternating blocks [{FULL['fine_tune_blocks']}]")
    parser.add_argument("--stream-small", type=int, help=f"pictures streamed, small run [{FULL['stream_small']}]")
    parser.add_argument("--stream-large", type=int, help=f"pictures streamed, large run [{FULL['stream_large']}]")
    parser.add_argument("--stream-size", type=int, help=f"streamed pictures' size [{FULL['stream_size']}]")
    parser.add_argument("--detector-size", type=int, help=f"detector input size [{FULL['detector_size']}]")
    parser.add_argument("--detector-steps", type=int, help=f"timed detector steps per feed [{FULL['detector_steps']}]")
    parser.add_argument("--skip", nargs="+", choices=PARTS, default=[], help="parts not to run")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, *rest = args.worker
        print(json.dumps(WORKERS[name](*rest)))
        return 0
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})

    begun = time.perf_counter()
    report = {"benchmark": "bench_train", "model": f"{MODEL} ({WEIGHTS} weights)", "device": "CPU",
              "cpus": os.cpu_count(), "load_average_before": round(os.getloadavg()[0], 2), "quick": args.quick,
              "classes": CLASSES, **settings}
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        size = settings["size"]
        folder = training_folder(os.path.join(tmp, "pictures"), settings["pictures"], size)
        # Baseline A and ours alternate, so that a busy spell on the machine does not fall on one of them only.
        forward_runs, edgekit_runs = [], []
        for number in range(max(1, settings["rounds"])):
            first = number == 0
            if "forward" not in args.skip:
                forward_runs.append(run_worker("forward", folder, size, "yes" if first else "no"))
            if "edgekit" not in args.skip:
                edgekit_runs.append(run_worker("edgekit", folder, size, os.path.join(tmp, "out") if first else "-"))
        if forward_runs:
            report["forward"] = best_of(forward_runs)
        if edgekit_runs:
            report["edgekit"] = best_of(edgekit_runs)
        if "model_maker" not in args.skip:
            report["model_maker"] = run_worker("model_maker", folder, size)
        if "edgekit" in report and "model_maker" in report:
            report["recipe_comparison"] = {
                "ours_test_accuracy": report["edgekit"].get("test_accuracy"),
                "ours_epochs_run": report["edgekit"].get("epochs_run"),
                "model_maker_test_accuracy": report["model_maker"].get("test_accuracy"),
                "model_maker_epochs": len(report["model_maker"].get("epochs", [])),
                "test_pictures": report["edgekit"].get("test_pictures")}
        if "fine_tune" not in args.skip:
            report["fine_tune"] = run_worker("fine_tune", folder, size, settings["fine_tune_steps"],
                                             settings["fine_tune_blocks"])
        if "detector_step" not in args.skip:
            boxes = composite_set(os.path.join(tmp, "boxes"), "coco", train=settings["detector_steps"] * 8 + 16,
                                  val=0, test=0, seed=SEED)
            report["detector_step"] = run_worker("detector_step", boxes, settings["detector_size"],
                                                 settings["detector_steps"], settings["fine_tune_blocks"])
        if "memory" not in args.skip:
            streamed = streaming_folder(os.path.join(tmp, "stream"), settings["stream_large"], settings["stream_size"])
            report["memory"] = {
                "small": run_worker("stream", streamed, settings["stream_small"], settings["stream_size"]),
                "large": run_worker("stream", streamed, settings["stream_large"], settings["stream_size"])}
    report["ratios"] = ratios_of(report)
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    report["failed_parts"] = sorted(k for k, v in report.items() if isinstance(v, dict) and "error" in v) + \
        sorted(f"memory.{k}" for k, v in report.get("memory", {}).items() if "error" in v)
    targets = [found["met"] for found in report["ratios"].values() if found["target"]]
    report["within_target"] = bool(targets) and all(targets)
    report["seconds"] = round(time.perf_counter() - begun, 1)
    print(json.dumps(report, indent=2))
    for line in summary_lines(report):
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
