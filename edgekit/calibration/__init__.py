"""Representative data and range methods for calibration (may import TensorFlow)."""
