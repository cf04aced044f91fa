"""Fit an EfficientNet-Lite classifier on a user's labelled pictures: `image_classifier(data, ...)`.

The phases, each one a loop over epochs that saves a checkpoint after every epoch (see `resume`):
1. head: the frozen backbone's pooled features are computed once for every picture, then the new head
   (dropout, dense, softmax) trains on them. TFLite Model Maker recomputed the features every epoch; here an
   epoch of the head costs a pass over arrays in memory. With augmentation asked for, features change from
   epoch to epoch, so the head trains on pictures through the frozen backbone instead.
2. fine-tune (`fine_tune=True`): the whole network trains on augmented pictures, batch-norm statistics
   frozen, with a warm-up and cosine decay (`recipe.FINE_TUNE`).
Each phase keeps the epoch with the lowest validation loss. Seeded runs give the same model: the order of
the pictures, their augmentation and the dropout masks are derived from (seed, epoch), and TensorFlow's op
determinism is on, so an interrupted run resumed from its checkpoint ends where an uninterrupted one does.

Imported only from inside `edgekit.train` functions: it imports TensorFlow.
"""

import contextlib
import os
import time
from collections import namedtuple

import keras
import numpy as np
import tensorflow as tf

from edgekit.progress import Progress
from edgekit.runtime.tasks import CLASSIFICATION, DEFAULT_RESIZE
from edgekit.training import input_data, labelled_data, recipe as recipes, resume
from edgekit.training.devices import placement
from edgekit.training.network import (TrainingError, attach_head, backbone_for, current_rate, head_of,
                                      phase_loss, phase_optimizer, reseed_dropout, set_drop_connect)

HEAD, FINE_TUNE = "head", "fine-tune"
RESIZE = DEFAULT_RESIZE[CLASSIFICATION]

# The settings of a run that its checkpoint must match on --resume (and that the report lists).
Settings = namedtuple("Settings", "model weights input_size fine_tune head fine seed")
# One score of a model on a subset: accuracy, mean loss (None where not computed), per-class precision /
# recall / support, the confusion matrix (rows: true class), and the predicted class and its score per picture.
Scores = namedtuple("Scores", "accuracy loss per_class confusion predicted confidence count")


def say(log, text):
    if log is not None:
        log(text)


# --- data as the network sees it --------------------------------------------------------------------------

def one_hot(labels, num_classes):
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def sample_weights(labels, class_weights):
    if class_weights is None:
        return np.ones(len(labels), np.float32)
    return np.array([class_weights[int(i)] for i in labels], np.float32)


def feature_batches(features, labels, num_classes, batch_size, weights=None, order=None):
    order = np.arange(len(labels)) if order is None else order
    parts = (features[order], one_hot(labels, num_classes)[order])
    if weights is not None:
        parts += (weights[order],)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch_size)


def picture_batches(subset, input_size, num_classes, batch_size, seed, epoch, shuffle, augment, class_weights,
                    crop_area=input_data.CROP_AREA):
    dataset = input_data.image_dataset(subset, input_size, num_classes, batch_size, seed=seed, epoch=epoch,
                                       shuffle=shuffle, augment=augment, resize=RESIZE, crop_area=crop_area)
    if class_weights is None:
        return dataset
    table = tf.constant([class_weights.get(i, 1.0) for i in range(num_classes)], tf.float32)
    return dataset.map(lambda x, y: (x, y, tf.gather(table, tf.argmax(y, axis=-1))))


class _BatchProgress(keras.callbacks.Callback):
    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_predict_batch_end(self, batch, logs=None):
        self.bar.update()


def pictures_only(subset, input_size, batch_size):
    """The pictures of `subset` in order, without labels or augmentation, as `edgekit run` reads them."""
    return input_data.image_dataset(subset, input_size, 1, batch_size, resize=RESIZE).map(lambda x, y: x)


def extract_features(features, subset, input_size, batch_size, label):
    """Pooled features [N, F] of every picture of `subset` through the frozen backbone, with a progress bar."""
    steps = -(-len(subset.paths) // batch_size)
    dataset = pictures_only(subset, input_size, batch_size)
    with Progress(steps, f"features of {label}", unit="batch") as bar, reading_errors():
        return features.predict(dataset, verbose=0, callbacks=[_BatchProgress(bar)])


# --- scores --------------------------------------------------------------------------------------------------

def scores_of(probabilities, labels, num_classes, loss=None):
    """`Scores` from class scores [N, C] and the true class indices."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.argmax(probabilities, axis=1)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = []
    for c in range(num_classes):
        hits, said, truth = confusion[c, c], confusion[:, c].sum(), confusion[c].sum()
        per_class.append({"precision": float(hits / said) if said else None,
                          "recall": float(hits / truth) if truth else None, "support": int(truth)})
    accuracy = float(np.mean(predicted == labels)) if len(labels) else None
    confidence = probabilities[np.arange(len(predicted)), predicted] if len(labels) else np.zeros(0)
    return Scores(accuracy, loss, per_class, confusion, predicted, confidence.astype(float), len(labels))


def cross_entropy(probabilities, labels):
    picked = probabilities[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return float(np.mean(-np.log(np.clip(picked, 1e-7, 1.0)))) if len(labels) else None


# --- the training loop -----------------------------------------------------------------------------------

# What a finished run hands to `TrainedClassifier`.
Trained = namedtuple("Trained", "model class_names splits settings history best scores class_weights placement "
                                "timings warnings input_size")


def _epoch_line(row, epochs, number):
    text = f"{row['phase']:9s} epoch {number}/{epochs}: loss {row['loss']:.4f} accuracy {row['accuracy']:.3f}"
    if row["val_loss"] is not None:
        text += f", val loss {row['val_loss']:.4f} val accuracy {row['val_accuracy']:.3f}"
    return text + f" ({row['seconds']:.1f} s)"


class EpochLoop:
    """The epochs of one run, over its phases: history, early stopping, checkpoints. `first_epoch`: the number
    the first epoch counts as, which seeds its order and dropout (a later pass, such as the head fitted to int8
    features, counts from elsewhere so its draws differ from the first pass's)."""

    def __init__(self, model, settings, checkpoints, fingerprint, log, state, first_epoch=0):
        self.model, self.settings, self.checkpoints, self.fingerprint, self.log = (model, settings, checkpoints,
                                                                                   fingerprint, log)
        self.first_epoch = first_epoch
        self.history = list(state["history"]) if state else []
        self.best = dict(state["best"]) if state and state.get("best") else {}
        self.timings = dict(state.get("timings", {})) if state else {}

    def done_in(self, phase):
        return sum(1 for row in self.history if row["phase"] == phase)

    def start_from(self, phase, trained, validate):
        """Make what `trained` holds now the best of `phase` so far (its validation loss is the one to beat);
        returns its weights, or None without validation data. Nothing is done when `phase` has begun."""
        if phase in self.best:
            return None
        found = validate()
        if found is None:
            return None
        self.best[phase] = {"loss": round(float(found[0]), 5), "accuracy": round(float(found[1]), 5),
                            "epoch": self.first_epoch + len(self.history), "since": 0}
        return trained.get_weights()

    def kept_start(self, phase):
        """Whether no epoch of `phase` beat the point it started from (see `start_from`)."""
        best = self.best.get(phase)
        return best is not None and best["epoch"] not in {row["epoch"] for row in self.history
                                                          if row["phase"] == phase}

    def save(self, phase, optimizer, best_weights):
        if self.checkpoints is None:
            return
        state = {"fingerprint": self.fingerprint, "phase": phase, "epochs_done": len(self.history),
                 "history": self.history, "best": self.best, "timings": self.timings}
        arrays = {"optimizer": [v.numpy() for v in optimizer.variables]} if optimizer is not None else {}
        if best_weights is not None:
            arrays["best"] = best_weights
        self.checkpoints.save(state, {"model": self.model}, arrays)

    def run(self, phase, phase_recipe, trained, optimizer, fit_epoch, validate, best_weights):
        """The epochs of `phase` still to do. `trained`: the model whose weights the phase changes (the head
        model, or the whole network); `fit_epoch(global_epoch)` -> (loss, accuracy); `validate()` -> (loss,
        accuracy) or None. Returns the best epoch's weights of `trained`, which it is left holding."""
        best = self.best.get(phase)
        for number in range(self.done_in(phase), phase_recipe.epochs):
            if phase_recipe.patience is not None and best and best["since"] >= phase_recipe.patience:
                break
            begun = time.perf_counter()
            global_epoch = self.first_epoch + len(self.history)
            reseed_dropout(self.model, self.settings.seed, global_epoch)
            rate = current_rate(optimizer)
            loss, accuracy = fit_epoch(global_epoch)
            found = validate()
            row = {"epoch": global_epoch + 1, "phase": phase, "loss": round(float(loss), 5),
                   "accuracy": round(float(accuracy), 5), "val_loss": None, "val_accuracy": None,
                   "learning_rate": round(rate, 8), "seconds": None}
            if found is not None:
                row["val_loss"], row["val_accuracy"] = round(float(found[0]), 5), round(float(found[1]), 5)
            validated = row["val_loss"] is not None
            watched = row["val_loss"] if validated else row["loss"]
            if best is None or watched < best["loss"]:
                best = {"loss": watched, "accuracy": row["val_accuracy"] if validated else row["accuracy"],
                        "epoch": row["epoch"], "since": 0}
                best_weights = trained.get_weights()
            else:
                best = dict(best, since=best["since"] + 1)
            row["seconds"] = round(time.perf_counter() - begun, 3)
            self.history.append(row)
            self.best[phase] = best
            self.timings[phase] = round(self.timings.get(phase, 0.0) + row["seconds"], 3)
            say(self.log, _epoch_line(row, phase_recipe.epochs, number + 1))
            self.save(phase, optimizer, best_weights)
        if best_weights is not None:
            trained.set_weights(best_weights)
        return best_weights


def _fit_one(trained, dataset):
    with reading_errors():
        history = trained.fit(dataset, epochs=1, verbose=0, shuffle=False).history
    return history["loss"][-1], history["accuracy"][-1]


def _evaluate(trained, dataset):
    with reading_errors():
        loss, accuracy = trained.evaluate(dataset, verbose=0)[:2]
    return loss, accuracy


@contextlib.contextmanager
def reading_errors():
    """A picture that breaks after the scan (changed or removed while training) surfaces from tf.data as an
    OpError around edgekit's own message: one line instead, pointing at --resume."""
    try:
        yield
    except tf.errors.OpError as e:
        lines = [line.strip() for line in str(e.message).splitlines() if line.strip()] or [type(e).__name__]
        text = next((line.split("EdgekitError: ", 1)[1] for line in lines if "EdgekitError: " in line), lines[0])
        raise TrainingError(f"a picture could not be read during training ({text[:300]}); fix or remove it, then "
                            "run the same command with --resume") from None


def _class_weights(splits, num_classes, warnings):
    counts = labelled_data.class_counts(splits.train, num_classes)
    weights = recipes.balanced_class_weights(counts)
    if weights is not None:
        warnings.append("classes are imbalanced (" + ", ".join(f"{n} {c}" for n, c in zip(splits.class_names, counts))
                        + " training pictures): each class is weighted so all count the same in the loss")
    return weights


def _compiled(trained, phase_recipe, steps, strategy, state):
    """Compile `trained` for a phase; on --resume, give its optimizer the saved state. Returns the optimizer."""
    with strategy.scope():
        optimizer = phase_optimizer(phase_recipe, steps)
        trained.compile(optimizer=optimizer, loss=phase_loss(phase_recipe), metrics=["accuracy"])
        # Built here, inside the strategy's scope: several devices need their slots made there.
        optimizer.build(trained.trainable_variables)
        if state is not None:
            resume.restore_optimizer(optimizer, resume.saved_arrays(state, "optimizer"))
    return optimizer


def _on_pictures(model, splits, input_size, batch, seed, phase_recipe, class_weights):
    """(fit_epoch, validate) of a phase that trains `model` on pictures read from disk each epoch."""
    num_classes = len(splits.class_names)

    def fit_epoch(epoch):
        return _fit_one(model, picture_batches(splits.train, input_size, num_classes, batch, seed, epoch, True,
                                               phase_recipe.augment, class_weights, phase_recipe.crop_area))

    def validate():
        if splits.val is None:
            return None
        return _evaluate(model, picture_batches(splits.val, input_size, num_classes, batch, 0, 0, False, False, None))

    return fit_epoch, validate


def _on_features(head, cached, splits, batch, seed, class_weights):
    """(fit_epoch, validate) of the head trained on features computed once, through Keras' fit: the way for
    several devices, where each step must be split across replicas."""
    num_classes = len(splits.class_names)
    train_weights = sample_weights(splits.train.labels, class_weights)

    def fit_epoch(epoch):
        order = input_data.epoch_order(len(splits.train.labels), seed, epoch)
        return _fit_one(head, feature_batches(cached["train"], splits.train.labels, num_classes, batch,
                                              train_weights, order))

    def validate():
        if splits.val is None:
            return None
        return _evaluate(head, feature_batches(cached["val"], splits.val.labels, num_classes, batch))

    return fit_epoch, validate


class HeadEpochs:
    """The head's epochs on features in memory, each one call of a compiled TensorFlow function: every step
    of the epoch and the validation loss in one graph. An epoch of the head is only a few small matrix
    products, so Keras' own per-epoch set-up in `fit` and `evaluate` would cost several times the epoch; the
    steps are the ones `fit` takes (same batches, loss, regularisation, optimizer, dropout)."""

    def __init__(self, head, optimizer, phase_recipe, cached, splits, batch, seed, class_weights):
        num_classes = len(splits.class_names)
        self.head, self.optimizer, self.batch, self.seed = head, optimizer, batch, seed
        self.loss = phase_loss(phase_recipe)
        self.count = len(splits.train.labels)
        self.train = (tf.constant(cached["train"], tf.float32), tf.constant(one_hot(splits.train.labels, num_classes)),
                      tf.constant(sample_weights(splits.train.labels, class_weights)))
        self.val = None if splits.val is None else (tf.constant(cached["val"], tf.float32),
                                                    tf.constant(one_hot(splits.val.labels, num_classes)))
        self.compiled_epoch = tf.function(self._epoch)
        self.compiled_validate = tf.function(self._validate)

    def _penalty(self):
        return tf.add_n(self.head.losses) if self.head.losses else 0.0

    def _epoch(self, order):
        features, targets, weights = self.train
        variables = self.head.trainable_variables
        total, correct = tf.constant(0.0), tf.constant(0.0)
        for start in tf.range(0, self.count, self.batch):
            picked = order[start:start + self.batch]
            x, y, w = tf.gather(features, picked), tf.gather(targets, picked), tf.gather(weights, picked)
            with tf.GradientTape() as tape:
                scores = self.head(x, training=True)
                loss = self.loss(y, scores, sample_weight=w) + self._penalty()
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            size = tf.cast(tf.shape(picked)[0], tf.float32)
            total += loss * size
            correct += tf.reduce_sum(tf.cast(tf.argmax(scores, -1) == tf.argmax(y, -1), tf.float32))
        return total / self.count, correct / self.count

    def _validate(self):
        features, targets = self.val
        scores = self.head(features, training=False)
        loss = self.loss(targets, scores) + self._penalty()
        accuracy = tf.reduce_mean(tf.cast(tf.argmax(scores, -1) == tf.argmax(targets, -1), tf.float32))
        return loss, accuracy

    def fit_epoch(self, epoch):
        order = tf.constant(input_data.epoch_order(self.count, self.seed, epoch), tf.int32)
        loss, accuracy = self.compiled_epoch(order)
        return float(loss), float(accuracy)

    def validate(self):
        if self.val is None:
            return None
        loss, accuracy = self.compiled_validate()
        return float(loss), float(accuracy)


def train_run(splits, settings, head_recipe, fine_recipe, checkpoints=None, resume_run=False, devices=None,
              log=None):
    """Fit the classifier `settings` describe on `splits`; returns a `Trained`."""
    started = time.perf_counter()
    num_classes = len(splits.class_names)
    fingerprint, state = resume.run_state(splits, settings._asdict(), checkpoints, resume_run)
    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    warnings = list(splits.warnings)
    class_weights = _class_weights(splits, num_classes, warnings)
    where = placement(devices)
    say(log, f"training on {where.text}")
    with where.strategy.scope():
        features, name = backbone_for(settings.model, settings.weights, settings.input_size)
        model = attach_head(features, num_classes, head_recipe, name, settings.seed)
    input_size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    loop = EpochLoop(model, settings, checkpoints, fingerprint, log, state)
    if state is not None:
        model.load_weights(os.path.join(state["path"], "model.weights.h5"))
        say(log, f"resuming after epoch {state['epochs_done']} ({state['phase']})")
    phase_now = state["phase"] if state else HEAD
    cached = None

    # Phase 1: the head on a frozen backbone: on features computed once, or on augmented pictures.
    for layer in features.layers:
        layer.trainable = False
    batch = head_recipe.batch_size
    steps = -(-len(splits.train.paths) // batch)
    if phase_now == HEAD:
        trained = model
        if not head_recipe.augment:
            cached = _cached_features(features, splits, input_size, batch, checkpoints, fingerprint, loop)
            with where.strategy.scope():
                trained = head_of(model, cached["train"].shape[1])
        optimizer = _compiled(trained, head_recipe, steps, where.strategy, state)
        if cached is None:
            fit_epoch, validate = _on_pictures(model, splits, input_size, batch, settings.seed, head_recipe,
                                               class_weights)
        elif where.strategy.num_replicas_in_sync == 1:
            epochs = HeadEpochs(trained, optimizer, head_recipe, cached, splits, batch, settings.seed, class_weights)
            fit_epoch, validate = epochs.fit_epoch, epochs.validate
        else:
            fit_epoch, validate = _on_features(trained, cached, splits, batch, settings.seed, class_weights)
        loop.run(HEAD, head_recipe, trained, optimizer, fit_epoch, validate, resume.saved_arrays(state, "best"))
        phase_now = FINE_TUNE if fine_recipe is not None else "done"
        state = None

    # Phase 2: the whole network (batch-norm statistics frozen).
    if phase_now == FINE_TUNE:
        cached = None
        _fine_tune(model, features, splits, input_size, settings.seed, fine_recipe, class_weights, where, state,
                   loop, warnings)
    if checkpoints is not None:
        loop.save("done", None, None)

    begun = time.perf_counter()
    scores = {}
    for split in ("val", "test"):
        subset = getattr(splits, split)
        if subset is None:
            continue
        if cached is not None:
            probabilities = head_of(model, cached[split].shape[1]).predict(cached[split], batch_size=batch, verbose=0)
            scores[split] = scores_of(probabilities, subset.labels, num_classes, cross_entropy(probabilities,
                                                                                                subset.labels))
        else:
            scores[split] = picture_scores(model, subset, input_size, batch)
    loop.timings["evaluate"] = round(time.perf_counter() - begun, 3)
    loop.timings["train_total"] = round(time.perf_counter() - started, 3)
    best = {phase: found["epoch"] for phase, found in loop.best.items()}
    for layer in model.layers:
        layer.trainable = True
    return Trained(model, list(splits.class_names), splits, settings, loop.history, best, scores, class_weights,
                   where.text, loop.timings, warnings, input_size)


def _fine_tune(model, features, splits, input_size, seed, fine_recipe, class_weights, where, state, loop, warnings):
    """The whole-network phase, kept only where it lowers the validation loss below the head's."""
    for layer in model.layers:
        layer.trainable = not (fine_recipe.freeze_batch_norm and isinstance(layer, keras.layers.BatchNormalization))
    drop_connect = set_drop_connect(features, fine_recipe.drop_connect)
    batch = fine_recipe.batch_size
    steps = -(-len(splits.train.paths) // batch)
    optimizer = _compiled(model, fine_recipe, steps, where.strategy, state)
    fit_epoch, validate = _on_pictures(model, splits, input_size, batch, seed, fine_recipe, class_weights)
    # Start from the head's result: fine-tuning is kept only where it lowers the validation loss.
    best_weights = loop.start_from(FINE_TUNE, model, validate) or resume.saved_arrays(state, "best")
    loop.run(FINE_TUNE, fine_recipe, model, optimizer, fit_epoch, validate, best_weights)
    set_drop_connect(features, drop_connect)
    if loop.kept_start(FINE_TUNE):
        warnings.append("fine-tuning never lowered the validation loss below the head-only model's, so the "
                        "head-only model is kept; try --no-augment, a lower --learning-rate, or no --fine-tune")


def predict_pictures(model, subset, input_size, batch_size=32):
    """Class scores [N, C] of the float model for every picture of `subset`, read as `edgekit run` reads them."""
    with reading_errors():
        return model.predict(pictures_only(subset, input_size, batch_size), verbose=0)


def picture_scores(model, subset, input_size, batch_size=32):
    """`Scores` (loss included) of the float model on the pictures of `subset`."""
    probabilities = predict_pictures(model, subset, input_size, batch_size)
    return scores_of(probabilities, subset.labels, probabilities.shape[1], cross_entropy(probabilities,
                                                                                         subset.labels))


def _cached_features(features, splits, input_size, batch, checkpoints, fingerprint, loop):
    """{split: features [N, F]}, computed once and kept beside the checkpoints, so a resumed run skips it."""
    path = os.path.join(checkpoints.folder, f"features-{fingerprint}.npz") if checkpoints else None
    names = [n for n in ("train", "val", "test") if getattr(splits, n) is not None]
    if path and os.path.isfile(path):
        return dict(zip(names, resume.load_arrays(path)))
    begun = time.perf_counter()
    found = {n: extract_features(features, getattr(splits, n), input_size, batch, f"{n} pictures") for n in names}
    loop.timings["features"] = round(time.perf_counter() - begun, 3)
    if path:
        os.makedirs(checkpoints.folder, exist_ok=True)
        resume.save_arrays(path, [found[n] for n in names])
    return found
