"""Weight imprinting: `engine.ImprintingEngine`, as pycoral's `pycoral.learn.imprinting.engine`."""
