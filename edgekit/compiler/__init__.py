"""edgetpu_compiler wrapper, static checker, compiled-model inspector (no TensorFlow)."""
