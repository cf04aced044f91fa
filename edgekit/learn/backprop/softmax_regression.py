"""pycoral's last-layer training, `SoftmaxRegression`, in numpy: no TensorFlow, so it runs on the board.

A fully-connected layer and a softmax are trained by mini-batch SGD on embeddings (the output of an embedding
extractor, e.g. Coral's `mobilenet_v1_1.0_224_quant_embedding_extractor.tflite`), then appended, quantized, to
that extractor by `serialize_model`. The names and arguments are pycoral's
(`pycoral.learn.backprop.softmax_regression`), so pycoral code ports by changing its import.

Facts kept from pycoral and libcoral (google-coral/pycoral, google-coral/libcoral `coral/learn/backprop`):
weights start as `weight_scale` times standard normal draws, biases at zero; each step draws `batch_size`
training rows with replacement; the loss is the mean softmax cross-entropy plus `0.5 * reg * sum(W**2)`
(biases are not regularized); every `print_every` iterations, counted from the first, the loss and the
training and validation accuracies are reported; the FC output is quantized over the range of the logits.
CS231n's notes on the softmax classifier (cs231n.github.io/linear-classify) derive the gradient used here.
"""

import os
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.tflite.heads import add_softmax_head
from edgekit.tflite.model import read_model

# pycoral's names for the four arrays of `train_with_sgd`'s `data`.
DATA_KEYS = ("data_train", "labels_train", "data_val", "labels_val")

LogitRange = namedtuple("LogitRange", "min max")
"""The smallest and largest logit over the training rows: the FC output's quantization range."""

TrainingProgress = namedtuple("TrainingProgress", "iteration loss train_accuracy val_accuracy")
"""One progress report: the iteration (from 0), that step's batch loss, the accuracies (val is None when
there are no validation rows)."""

TrainingHistory = namedtuple("TrainingHistory", "losses logit_range")
"""What `train_with_sgd` returns: each step's batch loss (float array) and the logit range it left."""

LossAndGradients = namedtuple("LossAndGradients", "loss weights biases")
"""The regularized batch loss and its gradients with respect to the weights (D, N) and the biases (N,)."""


def softmax(logits):
    """Row-wise softmax of a (rows, classes) array; the row maximum is subtracted first so exp cannot overflow."""
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / np.sum(exponentials, axis=-1, keepdims=True)


def loss_and_gradients(features, labels, weights, biases, reg):
    """Mean softmax cross-entropy of `features @ weights + biases` against `labels`, plus the L2 term, with its
    gradients: d(loss)/d(logits) is (softmax - one_hot) / rows."""
    rows = features.shape[0]
    logits = features @ weights + biases
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    picked = np.arange(rows)
    loss = -float(np.mean(log_probabilities[picked, labels])) + 0.5 * reg * float(np.sum(weights * weights))
    logit_gradient = np.exp(log_probabilities)
    logit_gradient[picked, labels] -= 1
    logit_gradient /= rows
    return LossAndGradients(loss, features.T @ logit_gradient + reg * weights, np.sum(logit_gradient, axis=0))


def checked_features(values, feature_dim, name):
    """`values` as a float32 (rows, feature_dim) array, or one line saying what is wrong with it."""
    try:
        features = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise EdgekitError(f"{name} is not an array of numbers ({error}): give one embedding per row") from None
    if features.ndim != 2:
        raise EdgekitError(f"{name} has shape {features.shape}, not (rows, {feature_dim}): give one embedding "
                           "per row")
    if features.shape[1] != feature_dim:
        raise EdgekitError(f"{name} has {features.shape[1]} features per row, but this SoftmaxRegression was "
                           f"made with feature_dim={feature_dim}: give embeddings of the extractor the model is "
                           "for, or make it with the embeddings' width")
    if not np.all(np.isfinite(features)):
        raise EdgekitError(f"{name} holds NaN or infinite values: give finite embeddings")
    return features


def checked_labels(values, rows, num_classes, name):
    """`values` as an int (rows,) array of class ids in [0, num_classes), or one line saying what is wrong."""
    labels = np.asarray(values)
    if labels.ndim != 1 or labels.shape[0] != rows:
        raise EdgekitError(f"{name} has shape {labels.shape}, but there are {rows} rows of features: give one "
                           "class id per row")
    if labels.size and not (np.issubdtype(labels.dtype, np.integer)
                            or (np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)))):
        raise EdgekitError(f"{name} holds values that are not whole numbers ({labels.dtype}): give class ids "
                           f"0..{num_classes - 1}")
    outside = labels[(labels < 0) | (labels >= num_classes)]
    if outside.size:
        raise EdgekitError(f"{name} holds class id {outside[0]:g}, outside [0, {num_classes}): give class ids "
                           f"0..{num_classes - 1}, or make the model with more classes")
    return labels.astype(np.intp)


def output_width(model):
    """The last axis of the model's single output when that output is one row ([1, D] or [1, 1, 1, D]), else
    None: the rest of the extractor contract is checked, and explained, by `heads.add_softmax_head`."""
    outputs = model.output_tensors()
    if len(outputs) != 1 or not outputs[0].shape or int(np.prod(outputs[0].shape[:-1])) != 1:
        return None
    return int(outputs[0].shape[-1])


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise EdgekitError(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


def _number_at_least(value, low, name, allow_low=True):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or number < low or (number == low and not allow_low):
        relation = ">=" if allow_low else ">"
        raise EdgekitError(f"{name} must be a finite number {relation} {low:g}, not {value!r}")
    return number


def _default_report(progress):
    """pycoral prints each progress report; so does edgekit unless `train_with_sgd` is given `on_progress`."""
    validation = "n/a" if progress.val_accuracy is None else f"{100 * progress.val_accuracy:.2f}%"
    print(f"iteration {progress.iteration}: loss {progress.loss:.4f}, train accuracy "
          f"{100 * progress.train_accuracy:.2f}%, validation accuracy {validation}")


class SoftmaxRegression:
    """A fully-connected layer and a softmax trained on embeddings by SGD (multinomial logistic regression).

    `weights` is (feature_dim, num_classes) and `biases` (num_classes,), both float32; `params` shows them
    under pycoral's names (`mat_w`, `vec_b`). `seed` (keyword only, an edgekit addition) makes the initial
    weights and the batches reproducible.
    """

    def __init__(self, feature_dim, num_classes, weight_scale=0.01, reg=0.0, *, seed=None):
        self.feature_dim = _positive_int(feature_dim, "feature_dim")
        self.num_classes = _positive_int(num_classes, "num_classes")
        if self.num_classes < 2:
            raise EdgekitError(f"num_classes is {num_classes}, and softmax regression needs at least two classes: "
                               "make the model with num_classes >= 2")
        weight_scale = _number_at_least(weight_scale, 0.0, "weight_scale")
        self.reg = _number_at_least(reg, 0.0, "reg (the L2 strength)")
        self._random = np.random.default_rng(seed)
        self.weights = (weight_scale * self._random.standard_normal((self.feature_dim, self.num_classes))
                        ).astype(np.float32)
        self.biases = np.zeros(self.num_classes, np.float32)
        self.logit_range = None

    @property
    def params(self):
        """pycoral's view of the parameters: the same arrays, so in-place edits reach the model."""
        return {"mat_w": self.weights, "vec_b": self.biases}

    def logits(self, mat_x):
        """The FC layer's output for each row of `mat_x` (float32, (rows, num_classes))."""
        features = checked_features(mat_x, self.feature_dim, "mat_x")
        return features @ self.weights + self.biases

    def run_inference(self, mat_x):
        """The predicted class id of each row of `mat_x` (pycoral's name)."""
        return np.argmax(self.logits(mat_x), axis=1)

    def get_accuracy(self, mat_x, labels):
        """The share of rows of `mat_x` whose predicted class is their label, as a float in [0, 1]."""
        features = checked_features(mat_x, self.feature_dim, "mat_x")
        labels = checked_labels(labels, features.shape[0], self.num_classes, "labels")
        if not labels.size:
            raise EdgekitError("mat_x has no rows: give at least one embedding to measure accuracy on")
        return self._accuracy(features, labels)

    def train_with_sgd(self, data, num_iter, learning_rate, batch_size=100, print_every=100, *, on_progress=None):
        """Train by `num_iter` steps of mini-batch SGD on `data` (pycoral's dict: `data_train`, `labels_train`,
        `data_val`, `labels_val`), reporting every `print_every` steps (0: never) to `on_progress` (a callable
        taking a `TrainingProgress`; by default a line is printed, as pycoral does).

        Training continues from the current weights when called again. Returns a `TrainingHistory`.
        """
        train, labels, val, val_labels = self._checked_data(data)
        num_iter = _positive_int(num_iter, "num_iter")
        batch_size = _positive_int(batch_size, "batch_size")
        if isinstance(print_every, bool) or not isinstance(print_every, (int, np.integer)) or print_every < 0:
            raise EdgekitError(f"print_every must be a whole number >= 0 (0: no reports), not {print_every!r}")
        learning_rate = _number_at_least(learning_rate, 0.0, "learning_rate", allow_low=False)
        report = _default_report if on_progress is None else on_progress
        losses = np.empty(num_iter, np.float64)
        for iteration in range(num_iter):
            batch = self._random.integers(0, train.shape[0], batch_size)
            # Overflow is caught below, as one line, rather than warned about by numpy for every array.
            with np.errstate(over="ignore", invalid="ignore"):
                step = loss_and_gradients(train[batch], labels[batch], self.weights, self.biases, self.reg)
                weights = self.weights - np.float32(learning_rate) * step.weights.astype(np.float32)
                biases = self.biases - np.float32(learning_rate) * step.biases.astype(np.float32)
            if not (np.isfinite(step.loss) and np.all(np.isfinite(weights)) and np.all(np.isfinite(biases))):
                raise EdgekitError(f"training diverged at iteration {iteration} (the loss or the weights overflowed): "
                                   f"use a smaller learning_rate than {learning_rate:g}")
            # In place: arrays taken from `params` (pycoral's dict) keep showing the model.
            self.weights[...] = weights
            self.biases[...] = biases
            losses[iteration] = step.loss
            if print_every and iteration % print_every == 0:
                val_accuracy = self._accuracy(val, val_labels) if val_labels.size else None
                report(TrainingProgress(iteration, step.loss, self._accuracy(train, labels), val_accuracy))
        training_logits = train @ self.weights + self.biases
        self.logit_range = LogitRange(float(training_logits.min()), float(training_logits.max()))
        return TrainingHistory(losses, self.logit_range)

    def serialize_model(self, in_model_path):
        """The bytes of the extractor at `in_model_path` with the trained layer appended, quantized, as
        FULLY_CONNECTED + SOFTMAX: a .tflite classifier of `num_classes` classes any TFLite interpreter runs."""
        if self.logit_range is None:
            raise EdgekitError("Model is not trained: call train_with_sgd before serialize_model")
        path = os.fspath(in_model_path)
        # The reader explains a missing, unreadable or damaged file; the bytes are then read for the editor.
        width = output_width(read_model(path))
        with open(path, "rb") as f:
            model_bytes = f.read()
        if width is not None and width != self.feature_dim:
            raise EdgekitError(f"{path}: its embedding has {width} values, but this SoftmaxRegression was trained "
                               f"on {self.feature_dim}: give the extractor whose embeddings it was trained on")
        return add_softmax_head(model_bytes, self.weights, self.biases, self.logit_range, name=path)

    def _accuracy(self, features, labels):
        return float(np.mean(np.argmax(features @ self.weights + self.biases, axis=1) == labels))

    def _checked_data(self, data):
        try:
            arrays = [data[key] for key in DATA_KEYS]
        except (KeyError, TypeError, IndexError):
            missing = [key for key in DATA_KEYS if not _has_key(data, key)]
            raise EdgekitError(f"data lacks {', '.join(missing)}: give a dict with {', '.join(DATA_KEYS)} "
                               "(pycoral's keys)") from None
        train = checked_features(arrays[0], self.feature_dim, "data_train")
        if not train.shape[0]:
            raise EdgekitError("data_train has no rows: give at least one embedding per class")
        labels = checked_labels(arrays[1], train.shape[0], self.num_classes, "labels_train")
        classes = np.unique(labels)
        if classes.size < 2:
            raise EdgekitError(f"labels_train holds only class {classes[0]}, and softmax regression needs at least "
                               "two classes: add embeddings of another class")
        # Validation rows are optional: an empty data_val (any shape) is reported as "n/a".
        no_rows = np.size(arrays[2]) == 0 and np.size(arrays[3]) == 0
        val = np.zeros((0, self.feature_dim), np.float32) if no_rows else \
            checked_features(arrays[2], self.feature_dim, "data_val")
        val_labels = checked_labels(arrays[3], val.shape[0], self.num_classes, "labels_val")
        return train, labels, val, val_labels


def _has_key(data, key):
    try:
        data[key]
    except (KeyError, TypeError, IndexError):
        return False
    return True
