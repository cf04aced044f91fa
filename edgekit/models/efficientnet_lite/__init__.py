"""EfficientNet-Lite0..4 (tensorflow/tpu `efficientnet/lite`) in Keras 3: presets, backbone, classifier."""
