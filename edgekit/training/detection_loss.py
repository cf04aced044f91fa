"""EfficientDet's training losses as two Keras loss functions, one per model output, for plain `model.fit`.

From google/automl `efficientdet` (det_model_fn.py, `_detection_loss`; the EfficientDet paper, section 3.3,
after RetinaNet's focal loss, Lin et al. 2017): the class loss is the sigmoid focal loss summed over anchors
and classes, the box loss a Huber loss on the (ty, tx, th, tw) regressions of the anchors that learn an
object; both are divided by the number of such anchors in the batch plus one. The total is
class loss + BOX_WEIGHT x box loss, which `compile(loss_weights=...)` applies.

The targets come from `box_input.box_dataset`: box targets [B, A, 5] whose last column marks the anchors that
learn an object, and class targets [B, A] holding a class index, -1 (background) or -2 (ignored).
Imported only from inside training functions: it imports Keras.
"""

import keras
from keras import ops

# automl's hparams_config.py defaults.
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 1.5
HUBER_DELTA = 0.1
BOX_WEIGHT = 50.0


def _normaliser(positive_mask):
    return ops.sum(positive_mask) + 1.0


@keras.saving.register_keras_serializable(package="edgekit")
class FocalLoss(keras.losses.Loss):
    """Sigmoid focal loss over class logits [B, A, C] against class targets [B, A]."""

    def __init__(self, num_classes, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA, name="class_loss", **kwargs):
        super().__init__(name=name, reduction="sum", **kwargs)
        self.num_classes, self.alpha, self.gamma = int(num_classes), float(alpha), float(gamma)

    def call(self, y_true, y_pred):
        classes = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, "float32")
        one_hot = ops.one_hot(ops.maximum(classes, 0), self.num_classes) * ops.cast(classes >= 0, "float32")[..., None]
        probability = ops.sigmoid(logits)
        cross_entropy = ops.binary_crossentropy(one_hot, logits, from_logits=True)
        p_t = one_hot * probability + (1.0 - one_hot) * (1.0 - probability)
        alpha = one_hot * self.alpha + (1.0 - one_hot) * (1.0 - self.alpha)
        loss = alpha * ops.power(1.0 - p_t, self.gamma) * cross_entropy
        counted = ops.cast(classes != -2, "float32")[..., None]
        return ops.sum(loss * counted) / _normaliser(ops.cast(classes >= 0, "float32"))

    def get_config(self):
        return {"num_classes": self.num_classes, "alpha": self.alpha, "gamma": self.gamma, "name": self.name}


@keras.saving.register_keras_serializable(package="edgekit")
class BoxLoss(keras.losses.Loss):
    """Huber loss of box regressions [B, A, 4] against box targets [B, A, 5] (the last column: learns an
    object), over the anchors that learn one, divided by their count plus one and by 4 coordinates."""

    def __init__(self, delta=HUBER_DELTA, name="box_loss", **kwargs):
        super().__init__(name=name, reduction="sum", **kwargs)
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        targets, positive = y_true[..., :4], y_true[..., 4:]
        error = ops.abs(ops.cast(y_pred, "float32") - targets)
        quadratic = ops.minimum(error, self.delta)
        huber = 0.5 * quadratic * quadratic + self.delta * (error - quadratic)
        return ops.sum(huber * positive) / (_normaliser(positive) * 4.0)

    def get_config(self):
        return {"delta": self.delta, "name": self.name}
