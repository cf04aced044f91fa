"""The detector's training run: an EfficientDet-Lite of the zoo fitted to a user's boxes with `model.fit`.

The network starts from the zoo: the backbone from ImageNet (Lite0-2), the BiFPN and heads fresh, a class head
sized to the user's classes; or from a detector trained before (`weights=PATH`, its class head replaced when
the classes differ). Each epoch streams augmented pictures and their anchor targets (`box_input`) into plain
Keras `fit` with EfficientDet's losses (`detection_loss`), validates on the unaugmented validation split, and
checkpoints (`resume.CheckpointFolder`), so Ctrl-C keeps the last finished epoch and `--resume` continues it.
The epoch with the lowest validation loss is kept (the last one without validation data).

Imported only from inside training functions (it imports TensorFlow).
"""

import math
import os
import time
from collections import namedtuple

import keras
import numpy as np
import tensorflow as tf

from edgekit.models.efficientdet_lite.detector import is_backbone_layer
from edgekit.training import resume
from edgekit.training.box_input import box_dataset
from edgekit.training.detection_loss import BOX_WEIGHT, FOCAL_ALPHA, FOCAL_GAMMA, HUBER_DELTA, BoxLoss, FocalLoss
from edgekit.training.detection_targets import MATCH_IOU
from edgekit.training.devices import placement
from edgekit.training.image_classifier import reading_errors, say
from edgekit.training.network import current_rate, phase_optimizer
from edgekit.training.recipe import DetectorRecipe

# model: zoo name; weights: "imagenet", None or a path; input_size: (height, width) or None for the model's
# own; recipe: a recipe.DetectorRecipe as a dict; seed: of the order, augmentation and initialisation.
Settings = namedtuple("Settings", "model weights input_size recipe seed")
TrainedDetectorRun = namedtuple("TrainedDetectorRun", "model splits settings input_size history best placement "
                                                      "warnings seconds")
"""What a run leaves: the Keras detector (best epoch's weights), the splits, settings, (height, width), the
history rows, the best epoch (1-based, or None), where it ran, warnings and training seconds."""

# The new class head's layer: replaced when a detector trained before has other classes.
CLASS_PREDICT = "class_net_predict"
# Training pictures the batch-norm statistics are measured on after each epoch (see PreciseBatchNorm).
BATCH_NORM_PICTURES = 96
_LOSS_KEYS = {"loss": "loss", "class_logits_loss": "class_loss", "box_encodings_loss": "box_loss"}


def loss_settings():
    """The losses' and matching's settings, for the report."""
    return {"focal_alpha": FOCAL_ALPHA, "focal_gamma": FOCAL_GAMMA, "huber_delta": HUBER_DELTA,
            "box_loss_weight": BOX_WEIGHT, "match_iou": MATCH_IOU}


def build(settings, num_classes):
    """The zoo detector `settings` describe, for `num_classes` classes, its backbone prepared for training."""
    from edgekit import models
    from edgekit.models import weights as weight_loading

    recipe = settings.recipe
    kwargs = {"batch_size": None}
    if settings.weights == "imagenet":
        kwargs["backbone_weights"] = "imagenet"
    model = models.create(settings.model, num_classes=num_classes, input_size=settings.input_size, **kwargs)
    if settings.weights not in (None, "imagenet"):
        weight_loading.load_weights(model, settings.weights, model_name=settings.model, head_layers=(CLASS_PREDICT,))
    for layer in model.layers:
        if not is_backbone_layer(layer.name):
            continue
        if recipe["freeze_backbone"] or isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model


def compile_for_training(model, recipe, steps, num_classes, state=None):
    """Compile `model` with the optimizer of `recipe` (a recipe.DetectorRecipe; `steps` per epoch) and
    EfficientDet's losses; on --resume, give the optimizer the saved state. Returns the optimizer."""
    optimizer = phase_optimizer(recipe, steps)
    model.compile(optimizer=optimizer, loss=[BoxLoss(), FocalLoss(num_classes)], loss_weights=[BOX_WEIGHT, 1.0])
    optimizer.build(model.trainable_variables)
    if state is not None:
        resume.restore_optimizer(optimizer, resume.saved_arrays(state, "optimizer"))
    return optimizer


def _losses(logs, prefix=""):
    return {name: round(float(logs[prefix + key]), 5) for key, name in _LOSS_KEYS.items() if prefix + key in logs}


def train_detector(splits, settings, checkpoints=None, resume_run=False, devices=None, log=None):
    """Fit the detector `settings` describe on `splits` (a labelled_boxes.BoxSplits); a TrainedDetectorRun."""
    started = time.perf_counter()
    num_classes = len(splits.class_names)
    recipe = DetectorRecipe(**settings.recipe)
    fingerprint, state = resume.run_state(splits, settings._asdict(), checkpoints, resume_run)
    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    where = placement(devices)
    say(log, f"training on {where.text}")
    batch = recipe.batch_size * where.strategy.num_replicas_in_sync
    steps = max(1, math.ceil(len(splits.train) / batch))
    with where.strategy.scope():
        model = build(settings, num_classes)
        optimizer = compile_for_training(model, recipe, steps, num_classes, state)
    input_size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    anchors = model.edgekit_anchors
    history = list(state["history"]) if state else []
    best = dict(state["best"]) if state and state.get("best") else None
    best_weights = resume.saved_arrays(state, "best")
    if state is not None:
        model.load_weights(os.path.join(state["path"], "model.weights.h5"))
        say(log, f"resuming after epoch {state['epochs_done']}")
    validation = (box_dataset(splits.val, input_size, anchors, batch) if splits.val else None)
    precise_batch_norm = PreciseBatchNorm(model)
    statistics_batches = box_dataset(_statistics_pictures(splits.train, settings.seed), input_size, anchors, batch)
    jitter = tuple(recipe.jitter) if recipe.jitter else None

    def seconds_spent():
        return time.perf_counter() - started + (state or {}).get("seconds", 0.0)

    for epoch in range(len(history), recipe.epochs):
        begun = time.perf_counter()
        rate = current_rate(optimizer)
        dataset = box_dataset(splits.train, input_size, anchors, batch, settings.seed, epoch, shuffle=True,
                              jitter=jitter, flip=recipe.flip)
        with reading_errors():
            logs = {k: v[-1] for k, v in model.fit(dataset, epochs=1, verbose=0, shuffle=False).history.items()}
            precise_batch_norm(statistics_batches)
            found = model.evaluate(validation, verbose=0, return_dict=True) if validation is not None else None
        row = {"epoch": epoch + 1, **_losses(logs), "val_loss": None, "val_class_loss": None, "val_box_loss": None,
               "learning_rate": round(rate, 8), "seconds": round(time.perf_counter() - begun, 2)}
        if found is not None:
            row.update({f"val_{k}": v for k, v in _losses(found).items()})
        history.append(row)
        if found is None or best is None or row["val_loss"] < best["val_loss"]:
            best = {"epoch": epoch + 1, "val_loss": row["val_loss"]}
            best_weights = model.get_weights() if found is not None else None
        say(log, _epoch_line(row, recipe.epochs, best))
        if checkpoints is not None:
            arrays = {"optimizer": [v.numpy() for v in optimizer.variables]}
            if best_weights is not None:
                arrays["best"] = best_weights
            checkpoints.save({"fingerprint": fingerprint, "epochs_done": len(history), "history": history,
                              "best": best, "seconds": seconds_spent()}, {"model": model}, arrays)
    if best_weights is not None:
        model.set_weights(best_weights)
    warnings = list(splits.warnings)
    return TrainedDetectorRun(model, splits, settings, input_size, history, best["epoch"] if best else None,
                              where.text, warnings, round(seconds_spent(), 3))


def _statistics_pictures(pictures, seed, most=BATCH_NORM_PICTURES):
    """The training pictures the batch-norm statistics are measured on: a seeded sample, the same every epoch."""
    order = np.random.default_rng([int(seed), 23]).permutation(len(pictures))[:most]
    return [pictures[i] for i in sorted(order)]


class PreciseBatchNorm:
    """Sets the trainable batch-norm layers' moving mean and variance to the average, over some batches, of what
    the network computes now, in place of the exponential average training kept.

    With momentum 0.99 that average trails the weights by a hundred steps or so: on a short run, or early in a
    long one, the validation loss and the exported model would see statistics of weights long gone (Wu and
    Johnson, "Rethinking 'Batch' in BatchNorm", arXiv:2105.07576, section 3: "precise BN"). Each batch runs
    through the network in training mode with momentum 0, so each layer's moving values become that batch's,
    read and averaged here; one compiled forward function serves every call. The frozen backbone's layers (not
    trainable) keep ImageNet's statistics."""

    def __init__(self, model):
        self.model = model
        self.norms = [layer for layer in model.layers
                      if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
        self.forward = None

    def __call__(self, batches):
        if not self.norms:
            return
        kept = [layer.momentum for layer in self.norms]
        for layer in self.norms:
            layer.momentum = 0.0
        try:
            if self.forward is None:
                self.forward = tf.function(lambda pixels: self.model(pixels, training=True), reduce_retracing=True)
            means = [np.zeros(layer.moving_mean.shape, np.float64) for layer in self.norms]
            variances = [np.zeros(layer.moving_variance.shape, np.float64) for layer in self.norms]
            count = 0
            for pixels, _ in batches:
                self.forward(pixels)
                count += 1
                for layer, mean, variance in zip(self.norms, means, variances):
                    mean += np.asarray(layer.moving_mean)
                    variance += np.asarray(layer.moving_variance)
            for layer, mean, variance in zip(self.norms, means, variances):
                layer.moving_mean.assign((mean / max(count, 1)).astype(np.float32))
                layer.moving_variance.assign((variance / max(count, 1)).astype(np.float32))
        finally:
            for layer, momentum in zip(self.norms, kept):
                layer.momentum = momentum


def _epoch_line(row, epochs, best):
    text = (f"epoch {row['epoch']}/{epochs}  loss {row['loss']:.4f} (class {row.get('class_loss', 0):.4f}, box "
            f"{row.get('box_loss', 0):.5f})")
    if row["val_loss"] is not None:
        text += f"  val loss {row['val_loss']:.4f}" + ("  best" if best and best["epoch"] == row["epoch"] else "")
    return text + f"  lr {row['learning_rate']:.5f}  {row['seconds']:.1f} s"
