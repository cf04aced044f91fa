"""The training recipes: what `edgekit train` does when given no flags, head-only and `--fine-tune`.

The head-only recipe starts from TFLite Model Maker's image-classifier defaults (5 epochs, batch 32, SGD at
0.005 with momentum 0.9, dropout 0.2, label smoothing 0.1, L2 1e-4 on the head; tensorflow/examples,
model_maker image_classifier hparams). Because edgekit computes the frozen backbone's features once, an
epoch of the head costs almost nothing, so it trains for up to 100 epochs and keeps the epoch with the lowest
validation loss (early stopping after 10 epochs without improvement) instead of stopping at a fixed five:
benchmarks/bench_train.py compares the two.

`--fine-tune` first trains the head as above (linear probing), then the whole network at a lower rate with a
linear warm-up and cosine decay, batch-norm statistics frozen and augmentation on. Training the head first
keeps the random head's large gradients from disturbing the pretrained features (Kumar et al., "Fine-Tuning
can Distort Pretrained Features", arXiv:2202.10054); frozen batch-norm statistics keep small batches from
replacing ImageNet's (Keras' transfer-learning guide). Two choices differ from training from scratch, because
the head was fitted on the backbone's clean features: stochastic depth (drop-connect) is off, since dropping
residual branches moves those features far from what the head learned, and random crops keep at least
half of the picture, not Inception's 8%, which on small or centred subjects often crops the subject away. The
fine-tune phase starts from the head's best validation loss: when no epoch of it does better (augmentation or
the whole network's freedom can hurt on some data), the head-only model is kept, and the report says so.
"""

from collections import namedtuple

# epochs: at most this many (early stopping may end sooner); patience: epochs without a lower validation loss
# before stopping (None: never stop early); warmup_epochs: linear warm-up from 0 (fine-tune phase only);
# crop_area: the share of a picture a random crop keeps when augmenting; drop_connect: the backbone's
# stochastic-depth rate while this phase trains it (None: the model's own).
Recipe = namedtuple("Recipe", "epochs batch_size learning_rate momentum dropout label_smoothing head_l2 "
                              "patience warmup_epochs cosine freeze_batch_norm augment crop_area drop_connect")

HEAD_ONLY = Recipe(epochs=100, batch_size=32, learning_rate=0.005, momentum=0.9, dropout=0.2, label_smoothing=0.1,
                   head_l2=1e-4, patience=10, warmup_epochs=0, cosine=False, freeze_batch_norm=True, augment=False,
                   crop_area=(0.08, 1.0), drop_connect=None)
FINE_TUNE = Recipe(epochs=10, batch_size=32, learning_rate=0.0001, momentum=0.9, dropout=0.2, label_smoothing=0.1,
                   head_l2=1e-4, patience=4, warmup_epochs=1, cosine=True, freeze_batch_norm=True, augment=True,
                   crop_area=(0.5, 1.0), drop_connect=0.0)

# Model Maker's own defaults, for comparisons (benchmarks/bench_train.py): five fixed epochs, no early stop.
MODEL_MAKER = HEAD_ONLY._replace(epochs=5, patience=None)

# Classes count as imbalanced, and get class weights, when the largest has this many times the pictures of
# the smallest.
IMBALANCE_RATIO = 1.5
# Pictures the int8 conversion calibrates on (training pictures, balanced over classes).
CALIBRATION_SAMPLES = 300
# Misclassified test pictures the report shows.
MISCLASSIFIED_SHOWN = 32


# The detector's recipe (`edgekit train efficientdet-liteN`), google/automl EfficientDet's as TFLite Model Maker's
# object detector used it (hparams_config.py; Model Maker's defaults: 50 epochs): SGD with momentum 0.9 at
# 0.08 per 64 pictures scaled linearly with the batch (Goyal et al. 2017, arXiv:1706.02677), a one-epoch linear
# warm-up then cosine decay, weight decay 4e-5; focal loss alpha 0.25 / gamma 1.5 and a Huber box loss (delta
# 0.1) weighted 50 (their values live in detection_loss.py); scale jitter and a horizontal flip. The jitter range
# is narrower than automl's 0.1 to 2.0, which is meant for hundreds of COCO epochs: at 0.1 a picture's objects
# shrink to a few pixels, below what any anchor can learn, and a run of tens of epochs on a user's few hundred
# pictures spends most of its steps on such views. The batch is smaller than automl's 64 so a CPU or a small GPU
# can hold it. The backbone's batch-norm statistics stay ImageNet's (small batches would replace them with noisy
# ones) and its stochastic depth is off, as when a classifier is fine-tuned; with `freeze_backbone` the backbone
# does not train at all (small data).
DetectorRecipe = namedtuple("DetectorRecipe", "epochs batch_size learning_rate momentum weight_decay warmup_epochs "
                                              "cosine jitter flip freeze_backbone")
AUTOML_RATE_PER_PICTURE = 0.08 / 64
DETECTOR = DetectorRecipe(epochs=50, batch_size=8, learning_rate=AUTOML_RATE_PER_PICTURE * 8, momentum=0.9,
                          weight_decay=4e-5, warmup_epochs=1, cosine=True, jitter=(0.5, 1.5), flip=True,
                          freeze_backbone=False)


def detector_recipe(epochs=None, batch_size=None, learning_rate=None, freeze_backbone=None, augment=None):
    """The detector's recipe with the user's overrides; the learning rate follows the batch unless given."""
    recipe = DETECTOR
    if batch_size is not None:
        recipe = recipe._replace(batch_size=batch_size, learning_rate=AUTOML_RATE_PER_PICTURE * batch_size)
    changes = {k: v for k, v in (("epochs", epochs), ("learning_rate", learning_rate),
                                 ("freeze_backbone", freeze_backbone)) if v is not None}
    if augment is False:
        changes.update(jitter=None, flip=False)
    return recipe._replace(**changes)


def recipe_for(fine_tune, epochs=None, batch_size=None, learning_rate=None, augment=None):
    """The recipe of a phase with the user's overrides: `fine_tune` picks the whole-network phase's."""
    base = FINE_TUNE if fine_tune else HEAD_ONLY
    changes = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size), ("learning_rate", learning_rate),
                                 ("augment", augment)) if v is not None}
    return base._replace(**changes)


def balanced_class_weights(counts):
    """{class index: weight} so every class weighs the same in the loss (n / (k * count)), or None when the
    classes are balanced enough (largest / smallest below IMBALANCE_RATIO)."""
    present = [c for c in counts if c > 0]
    if not present or max(present) < IMBALANCE_RATIO * min(present):
        return None
    total, kinds = sum(present), len(present)
    return {i: (total / (kinds * c) if c else 0.0) for i, c in enumerate(counts)}
