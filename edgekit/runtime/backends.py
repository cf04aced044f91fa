"""Which TFLite interpreter runs models here: the one place that decides.

Order: pycoral (the real one, on top of tflite-runtime), ai-edge-litert, tflite-runtime, and last
tf.lite. `EDGEKIT_BACKEND` forces one by name.

TensorFlow is imported here and nowhere else in the runtime (tests/test_architecture.py holds every other
module to that), and only as the last resort: when none of the three lighter interpreters imports, or when
EDGEKIT_BACKEND=tensorflow asks for it. It stays because on some machines it is the only interpreter PyPI
has: tflite-runtime publishes no Windows wheels, ai-edge-litert's Windows wheels begin with its 2.1.2
release and need Python 3.10 or newer (https://pypi.org/project/ai-edge-litert/#files), and edgekit's own
dependency on ai-edge-litert is left out on Windows (pyproject.toml), while TensorFlow publishes Windows
wheels, Python 3.9's included.
"""

import importlib
import os
import sys
from collections import namedtuple

from edgekit.errors import EdgekitError

class Backend(namedtuple("Backend", "name version Interpreter load_delegate")):
    __slots__ = ()

    @property
    def text(self):
        """How reports name the backend: "name version"."""
        return f"{self.name} {self.version}"

ORDER = ("pycoral", "ai-edge-litert", "tflite-runtime", "tensorflow")
# The one TensorFlow import of the runtime, by this name only: the last resort (see the module docstring).
TENSORFLOW_MODULE = "tensorflow"


def _pycoral():
    # PyPI's `pycoral` is an unrelated project: the real one has pycoral.utils.edgetpu.make_interpreter.
    edgetpu = importlib.import_module("pycoral.utils.edgetpu")
    if not hasattr(edgetpu, "make_interpreter"):
        raise ImportError("pycoral here is not Coral's pycoral")
    tflite = importlib.import_module("tflite_runtime.interpreter")
    return Backend("pycoral", _version("pycoral"), tflite.Interpreter, tflite.load_delegate)


def _litert():
    module = importlib.import_module("ai_edge_litert.interpreter")
    return Backend("ai-edge-litert", _version("ai_edge_litert"), module.Interpreter, module.load_delegate)


def _tflite_runtime():
    module = importlib.import_module("tflite_runtime.interpreter")
    return Backend("tflite-runtime", _version("tflite_runtime"), module.Interpreter, module.load_delegate)


def _tensorflow():
    tf = importlib.import_module(TENSORFLOW_MODULE)
    return Backend("tensorflow", tf.__version__, tf.lite.Interpreter, tf.lite.experimental.load_delegate)


_LOADERS = dict(zip(ORDER, (_pycoral, _litert, _tflite_runtime, _tensorflow)))


def _version(package):
    # The package's own attribute: importlib.metadata reads installed distributions' metadata from disk,
    # a start-up cost every run would pay.
    module = sys.modules.get(package) or importlib.import_module(package)
    return str(getattr(module, "__version__", "unknown"))


_selected = {}


def select_backend(name=None):
    """The first interpreter backend that imports, or the one named (argument or EDGEKIT_BACKEND)."""
    name = name or os.environ.get("EDGEKIT_BACKEND") or None
    if name in _selected:
        return _selected[name]
    if name is not None and name not in _LOADERS:
        raise EdgekitError(f"unknown backend '{name}': choose one of {', '.join(ORDER)}")
    failures = []
    for candidate in ([name] if name else ORDER):
        try:
            backend = _LOADERS[candidate]()
        except Exception as e:  # noqa: BLE001 - broken installs raise all sorts (ImportError, AttributeError)
            failures.append(f"{candidate}: {e}")
            continue
        _selected[name] = backend
        return backend
    raise EdgekitError("no TFLite interpreter could be imported (" + "; ".join(failures) +
                       "): pip install ai-edge-litert")
