"""The runtime: interpreters, the Edge TPU delegate, adapters. Never imports TensorFlow."""
