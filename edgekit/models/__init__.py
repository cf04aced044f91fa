"""Keras model builders, registry and weights (may import TensorFlow)."""
