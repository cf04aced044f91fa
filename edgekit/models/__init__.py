"""edgekit's model zoo: EfficientNet-Lite and EfficientDet-Lite builders, a registry, and weights.

    from edgekit import models
    models.list_models()                                   # fixed variants, no TensorFlow imported
    models.model_entry("efficientnet-lite0").mean          # its preset, weights and preprocessing, as fields
    model = models.create("efficientnet-lite0", weights="imagenet")
    detector = models.create("efficientdet-lite0", num_classes=3)
    model = models.load("my_model.keras")

Importing this package does not import TensorFlow; building or loading a model does.
"""

from edgekit.models.loading import load
from edgekit.models.registry import create, list_families, list_models, model_entry, register_model


def imagenet_labels():
    """The 1000 ImageNet class names, indexed like the 1000-class heads (no background class)."""
    from edgekit.models.imagenet import IMAGENET_LABELS

    return list(IMAGENET_LABELS)


__all__ = ["create", "imagenet_labels", "list_families", "list_models", "load", "model_entry", "register_model"]
