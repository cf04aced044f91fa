"""Open a .tflite model on the Edge TPU or the CPU: `make_interpreter` (pycoral's name) and `open_model`.

A compiled model (one with `edgetpu-custom-op`) cannot run on the CPU, so without an Edge TPU we run
its CPU twin instead: the model named in edgekit's metadata, else `X.tflite` beside `X_edgetpu.tflite`.
"""

import contextlib
import os
import sys
import tempfile
from collections import namedtuple

from edgekit.errors import DeviceError, EdgekitError
from edgekit.runtime import edgetpu
from edgekit.runtime.backends import select_backend
from edgekit.tflite.edgetpu_package import min_runtime_version
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

OpenedModel = namedtuple("OpenedModel", "interpreter model path device backend requested_path segments",
                         defaults=(None,))
"""What was opened: the interpreter, the model (a `tflite.Model`), the model file that actually runs, where,
through which backend, the path as asked for, and segments (None for one model file).

A model cut into segments (a folder of them, or several segment files: see `names_segments`) opens as one
OpenedModel too, so that everything that runs one model runs it: interpreter is a
`runtime.segmented.ChainedInterpreter` running the segments one after the other; model the last segment's
(its outputs are the whole model's, and every segment carries the whole model's metadata); path the segment
files that run, joined by ", "; device the segments' devices joined by commas ("usb:0,usb:1"); requested_path
the folder or the files as given (joined by ", "); segments the `runtime.segmented.OpenedSegments`, whose
interpreters `runtime.pipeline.Runner` pipelines over a stream of images."""


def cpu_twin_path(model):
    """Where the CPU twin of a compiled model should be (it may not exist)."""
    folder = os.path.dirname(model.path)
    named = read_edgekit_metadata(model).get("cpu_model")
    if isinstance(named, str) and named:
        return os.path.join(folder, named)
    stem, ext = os.path.splitext(os.path.basename(model.path))
    if stem.endswith("_edgetpu"):
        stem = stem[: -len("_edgetpu")]
    return os.path.join(folder, stem + ext)


def _is_float_model(model):
    return any(t.type in ("FLOAT32", "FLOAT16") and not t.is_constant for t in model.main.tensors)


def print_notice(message):
    """The default `notice`: what was chosen on the user's behalf, one line on stderr (stdout carries results)."""
    print(f"edgekit: {message}", file=sys.stderr)


def names_segments(path):
    """True when `path` (as `open_model` takes it) names a model cut into segments rather than one model file:
    a folder, or a list of paths that `runtime.segmented.is_segment_set` takes for segments (more than one, or
    one file named as one segment of several, which cannot run alone); `runtime.segmented.find_segments` then
    checks that they are all the segments of one model. A single path (not in a list) that is a file is one
    model, whatever its name: that is how a segment itself is opened."""
    if not isinstance(path, (list, tuple)):
        return os.path.isdir(path)
    from edgekit.runtime import segmented

    return any(os.path.isdir(p) for p in path) or segmented.is_segment_set(model_paths(path))


def model_paths(path):
    """`path` as a list of paths (one file, a folder, or a list of them)."""
    return [os.fspath(p) for p in path] if isinstance(path, (list, tuple)) else [os.fspath(path)]


def open_model(path, device="auto", num_threads=None, backend=None, notice=print_notice):
    """Read `path`, pick where it runs, and return an allocated interpreter as an `OpenedModel`.

    `path` may also be a list holding one model file, or a model cut into segments (`edgekit segment`,
    `edgekit compile --segments`): their folder, or a list of its segment files in order (`names_segments`, and
    `open_segment_set`)."""
    if names_segments(path):
        return open_segment_set(path, device, num_threads, notice, backend)
    if isinstance(path, (list, tuple)):
        (path,) = path
    target = edgetpu.parse_device(device)
    model = read_model(path)
    backend = select_backend(backend)
    compiled = model.is_edgetpu_compiled

    if target.kind == "edgetpu" and not compiled:
        if _is_float_model(model):
            raise EdgekitError(f"{path}: a float model cannot run on the Edge TPU, which runs only int8/uint8 "
                               "models compiled by edgetpu_compiler: quantize it (edgekit convert), compile "
                               "it (edgekit compile), or use --device cpu")
        raise EdgekitError(f"{path}: not compiled for the Edge TPU (no edgetpu-custom-op): run "
                           f"`edgekit compile {path}` first, or use --device cpu")

    if compiled and target.kind in ("edgetpu", "auto"):
        reason = None
        try:
            edgetpu.check_runtime_version(path, min_runtime_version(model))
            delegate = edgetpu.load_delegate(backend, target.option, path)
            return OpenedModel(_interpreter(backend, model.path, num_threads, [delegate]), model, model.path,
                               target.option or "edgetpu", backend, path)
        except DeviceError as e:
            if target.kind == "edgetpu":
                raise
            reason = getattr(e, "problem", str(e))
        return _open_twin(model, backend, num_threads, reason, notice, path)
    if compiled:
        return _open_twin(model, backend, num_threads, "--device cpu was asked for", notice, path)
    return OpenedModel(_interpreter(backend, model.path, num_threads), model, model.path, "cpu", backend, path)


def _open_twin(model, backend, num_threads, why, notice, requested):
    twin = cpu_twin_path(model)
    if not os.path.isfile(twin):
        raise EdgekitError(f"{model.path} is compiled for the Edge TPU and cannot run on the CPU ({why}), and "
                           f"its CPU twin {twin} is missing: put the uncompiled model there, or attach an "
                           "Edge TPU")
    notice(f"{model.path} needs an Edge TPU ({why}); running its CPU twin {twin} instead")
    twin_model = read_model(twin)
    return OpenedModel(_interpreter(backend, twin, num_threads), twin_model, twin, "cpu", backend, requested)


def set_name(paths):
    """How a model in segments is named in results and messages: its folder, or its files joined by ", "."""
    return ", ".join(os.fspath(p) for p in paths)


def open_segment_set(path, device="auto", num_threads=None, notice=print_notice, backend=None):
    """Open a model cut into segments (a folder of them, or its segment files in order) as one `OpenedModel`
    whose interpreter runs them one after the other (see `OpenedModel`). device: as `open_model` takes it, or
    one device per segment ("usb:0,usb:1"); "auto": as many Edge TPUs as there are compiled segments when found,
    else the CPU. num_threads: each segment's CPU threads, by default the cores shared out between the segments,
    which run at once when pipelined. `runtime.segmented` finds, checks and opens the segments, and says in one
    line what is wrong with a set (a segment missing, segments of different models, fewer devices than
    segments, a device another process holds)."""
    from edgekit.runtime import segmented

    paths = model_paths(path)
    opened = segmented.open_segments(paths, device=device, num_threads=num_threads, notice=notice, backend=backend)
    return segmented.chained_model(opened, set_name(paths))._replace(segments=opened)


@contextlib.contextmanager
def _native_info_silenced():
    """Drop the C++ runtime's INFO lines ("Created TensorFlow Lite XNNPACK delegate for CPU.") from
    stderr: they would break the one-line-per-problem promise. Other lines are passed on, unless the
    block fails: then the exception carries the runtime's message and the raw lines would repeat it."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not line.startswith("INFO: ")]
            if kept and not failed:
                print("\n".join(kept), file=sys.stderr)


def _interpreter(backend, path, num_threads, delegates=None):
    threads = num_threads or os.cpu_count() or 1
    try:
        with _native_info_silenced():
            interpreter = backend.Interpreter(model_path=path, num_threads=threads,
                                              experimental_delegates=delegates)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        detail = " ".join(str(e).split())
        raise EdgekitError(f"{path}: the TFLite runtime cannot load this model ({detail}); check that it "
                           "was written by a compatible converter and uses only builtin ops") from e
    return interpreter


def make_interpreter(model_path, device="auto", num_threads=None):
    """pycoral-style: an allocated interpreter for `model_path` on `device` (see `open_model`)."""
    return open_model(model_path, device=device, num_threads=num_threads).interpreter


def invoke(opened):
    """Run one inference, turning a kernel failure into a clear error naming the model."""
    try:
        opened.interpreter.invoke()
    except (RuntimeError, ValueError) as e:
        detail = " ".join(str(e).split())
        raise EdgekitError(f"{opened.path}: inference failed ({detail})") from e
