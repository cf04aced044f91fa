"""EfficientDet-Lite0..4 and 3x (google/automl `efficientdet`) in Keras 3."""
