"""Keras to int8 TFLite, post-processing, metadata (may import TensorFlow)."""
