"""Functions to work with a classification model: dequantized scores, top-k classes."""

import collections
import numpy as np

from edgekit.runtime.adapters import common

Class = collections.namedtuple("Class", ["id", "score"])
"""One classification result: the class id (an int) and its score (a float)."""


def num_classes(interpreter):
    """How many classes the model scores (the last axis of output 0)."""
    return int(common.output_details(interpreter, 0)["shape"][-1])


def get_scores(interpreter):
    """The scores of output 0 as a flat float array, dequantized (by common.output_tensor)."""
    return np.asarray(common.output_tensor(interpreter, 0), dtype=np.float32).reshape(-1)


def get_classes_from_scores(scores, top_k=float("inf"), score_threshold=-float("inf")):
    """The `top_k` best `Class`es with score >= `score_threshold`, best first.

    Ties keep the lower id first, so results are the same on every run and every backend.
    """
    scores = np.asarray(scores).reshape(-1)
    top_k = int(min(top_k, len(scores)))
    if top_k <= 0:
        return []
    # A stable sort on -score orders ties by id; argpartition would not.
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [Class(int(i), float(scores[i])) for i in order if scores[i] >= score_threshold]


def get_classes(interpreter, top_k=float("inf"), score_threshold=-float("inf")):
    """pycoral's get_classes: the `top_k` classes of the last invoke scoring >= `score_threshold`."""
    return get_classes_from_scores(get_scores(interpreter), top_k, score_threshold)
