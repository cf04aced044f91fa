"""The model zoo's registry: one decorator per model, `create(name, ...)` and `list_models()` (timm style).

Importing this module, or `edgekit.models`, does not import TensorFlow: the entries are plain data and each
builder imports Keras only when it runs. That keeps `edgekit models --json` cheap to list and lets the rest
of edgekit ask what the zoo holds without paying for TensorFlow.
"""

import difflib
from collections import namedtuple

from edgekit.errors import EdgekitError

# name: what create() takes; task: "classification" or "detection"; input_size: (height, width) default;
# num_classes: the default head; published_params: the reference parameter count (None for families);
# weights: {weights name: where it comes from}; builder: f(num_classes, input_size, weights, **kw) -> Model;
# listed: False for parametric families such as "efficientnet-lite" (phi=...), which need arguments.
ModelEntry = namedtuple("ModelEntry", "name task input_size num_classes published_params weights builder "
                                      "listed description")

_ENTRIES = {}


class UnknownModelError(EdgekitError):
    exit_code = 2


def register_model(name, *, task, input_size=None, num_classes=None, published_params=None, weights=None,
                   listed=True, description=""):
    """Decorator: register `builder(num_classes=..., input_size=..., weights=..., **kw)` under `name`."""

    def decorate(builder):
        if name in _ENTRIES:
            raise ValueError(f"model '{name}' is registered twice")
        size = (input_size, input_size) if isinstance(input_size, int) else input_size
        _ENTRIES[name] = ModelEntry(name, task, size, num_classes, published_params, dict(weights or {}),
                                    builder, listed, description)
        return builder

    return decorate


def _load_presets():
    # The preset modules register their models when imported; they import no Keras themselves.
    from edgekit.models.efficientnet_lite import presets as _classification  # noqa: F401
    from edgekit.models.efficientdet_lite import presets as _detection  # noqa: F401


def list_models(task=None):
    """Names of the fixed variants, in registration order (families such as "efficientnet-lite" excluded)."""
    _load_presets()
    return [e.name for e in _ENTRIES.values() if e.listed and (task is None or e.task == task)]


def list_families():
    """Names of the parametric entries (create("efficientnet-lite", phi=...)), left out of list_models()."""
    _load_presets()
    return [e.name for e in _ENTRIES.values() if not e.listed]


def model_entry(name):
    """The ModelEntry for `name`; an EdgekitError naming close matches for unknown names."""
    _load_presets()
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
    return entry.builder(num_classes=num_classes if num_classes is not None else entry.num_classes,
                         input_size=input_size, weights=weights, **kwargs)
