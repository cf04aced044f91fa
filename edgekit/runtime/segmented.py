"""A model cut into segments (by `edgekit segment`, or `edgetpu_compiler --num_segments`): finding the files,
checking that they are all the segments of one model, opening each on its device, and running them one after
the other as if they were one interpreter.

Segment files are named as the Edge TPU compiler names them, `<stem>_segment_K_of_N.tflite` with K from 0, and
`<stem>_segment_K_of_N_edgetpu.tflite` once compiled (Coral's "Segmenting a model for pipelining"). Segments
written by edgekit also carry edgekit's metadata with a "segment" field: {"index": K, "count": N, "model": the
sha256 of the whole model's bytes, "name": the whole model's file name}; where it is there it decides, since a
file can be renamed. Tensors keep the whole model's names, and segments are wired by them: an output of
segment K is read, under the same name, by a later segment (pipelining.tensors_carried checks this).
"""

import os
import re
import time
from collections import namedtuple

import numpy as np

from edgekit.errors import DeviceError, EdgekitError
from edgekit.runtime import edgetpu
from edgekit.runtime.interpreter import OpenedModel, open_model, print_notice
from edgekit.runtime.pipelining import PipelineSetupError, tensors_carried
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model
from edgekit.tflite.segments import segment_names

SEGMENT_FILE = re.compile(r"^(?P<stem>.+)_segment_(?P<index>\d+)_of_(?P<count>\d+)(?P<edgetpu>_edgetpu)?\.tflite$")
"""A segment's file name as `tflite.segments.segment_names` writes it: groups stem, index (K), count (N) and
edgetpu ("_edgetpu" once compiled, else None)."""

SegmentFile = namedtuple("SegmentFile", "path stem index count compiled model model_name")
"""What one segment file says it is: its path, the whole model's stem, index K and count N (from the metadata
where it has a "segment" field, else from the file name), whether it holds Edge TPU code (edgetpu-custom-op),
the whole model's sha256 (None without metadata) and the whole model's file name."""


class OpenedSegments(namedtuple("OpenedSegments", "segments paths devices model_name")):
    """A model's segments, opened: `segments` (runtime.interpreter.OpenedModel, segment 0 first), `paths` (the
    segment files as found, in order), `devices` (where each runs: "usb:0", "cpu", ...) and `model_name` (the
    whole model's file name)."""

    __slots__ = ()

    @property
    def interpreters(self):
        """The segments' interpreters, in order: what `PipelinedModelRunner` takes."""
        return [segment.interpreter for segment in self.segments]


def describe_segment(path):
    """The `SegmentFile` of one file, or None when neither its name nor its metadata says it is a segment."""
    path = os.fspath(path)
    match = SEGMENT_FILE.match(os.path.basename(path))
    model = read_model(path)
    recorded = read_edgekit_metadata(model).get("segment")
    recorded = recorded if isinstance(recorded, dict) else {}
    index, count = recorded.get("index"), recorded.get("count")
    if not (isinstance(index, int) and isinstance(count, int)):
        if match is None:
            return None
        index, count = int(match["index"]), int(match["count"])
    name = recorded.get("name") if isinstance(recorded.get("name"), str) else None
    stem = match["stem"] if match else os.path.splitext(name or os.path.basename(path))[0]
    whole = recorded.get("model") if isinstance(recorded.get("model"), str) else None
    return SegmentFile(path, stem, index, count, model.is_edgetpu_compiled, whole, name or f"{stem}.tflite")


def is_segment_set(paths):
    """Whether `paths` (one path or several) name a model cut into segments rather than one model: a folder
    holding segment files, more than one model file, or one file named as one segment of several
    (`..._segment_K_of_N.tflite` with N > 1, which alone cannot run: find_segments says which are missing)."""
    paths = _as_list(paths)
    if len(paths) != 1:
        return len(paths) > 1
    path = paths[0]
    if os.path.isdir(path):
        return any(SEGMENT_FILE.match(name) for name in os.listdir(path))
    match = SEGMENT_FILE.match(os.path.basename(path))
    return bool(match) and int(match["count"]) > 1


def find_segments(paths):
    """The segment files of one model, segment 0 first, from one folder or from several files.

    From a folder: every `..._segment_K_of_N[_edgetpu].tflite` in it, the compiled set where both a compiled and
    a CPU set are there (a compiled segment finds its CPU twin beside it, as `open_model` does). Raises
    EdgekitError in one line for a path that does not exist, a folder given with other paths, a folder without
    segments, a file that is no segment, segments of different models or cuts, two files for one segment, and
    a missing segment."""
    return [segment.path for segment in _found_segments(paths)]


def _as_list(paths):
    if isinstance(paths, (str, bytes, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def _found_segments(paths):
    paths = _as_list(paths)
    if not paths:
        raise EdgekitError("no segments given: give the folder `edgekit segment` or `edgekit compile --segments` "
                           "wrote, or the segment files")
    for path in paths:
        if not os.path.exists(path):
            raise EdgekitError(f"{path}: no such file or folder")
    folders = [path for path in paths if os.path.isdir(path)]
    if folders and len(paths) > 1:
        others = [path for path in paths if path != folders[0]]
        raise EdgekitError(f"{folders[0]} is a folder and {others[0]} {'another' if others[0] in folders else 'a'} "
                           f"{'folder' if others[0] in folders else 'file'}: give one folder of segments, or the "
                           "segment files, not both")
    if folders:
        where = folders[0]
        segments = _folder_set(where)
    else:
        where = "the segments given"
        segments = []
        for path in paths:
            segment = describe_segment(path)
            if segment is None:
                raise EdgekitError(f"{path} is not a segment of a model: its name is not "
                                   f"<model>_segment_K_of_N[_edgetpu].tflite and its metadata names no segment; give "
                                   "the segment files `edgekit segment` or `edgekit compile --segments` wrote")
            segments.append(segment)
    _check_one_model(segments)
    return _in_order(segments, where)


def _folder_set(folder):
    names = sorted(name for name in os.listdir(folder) if SEGMENT_FILE.match(name))
    if not names:
        raise EdgekitError(f"{folder}: no segment files (<model>_segment_K_of_N[_edgetpu].tflite) in this folder: "
                           f"cut a model into it with `edgekit segment MODEL --segments N --out {folder}`")
    matches = [SEGMENT_FILE.match(name) for name in names]
    # Where compiled segments are there, their CPU twins beside them are not a second set.
    compiled = [name for name, match in zip(names, matches) if match["edgetpu"]]
    return [describe_segment(os.path.join(folder, name)) for name in (compiled or names)]


def _check_one_model(segments):
    first = segments[0]
    for other in segments[1:]:
        why = None
        if first.model and other.model and first.model != other.model:
            why = f"their metadata names different whole models, {first.model_name} and {other.model_name}"
        elif not (first.model and other.model) and first.stem != other.stem:
            why = f"their names say different models, {first.stem} and {other.stem}"
        elif first.count != other.count:
            why = f"one is cut into {first.count}, the other into {other.count}"
        if why:
            raise EdgekitError(f"{first.path} and {other.path} are not segments of one model ({why}): give the "
                               "segments of one model only, all cut the same way")


def _in_order(segments, where):
    count = segments[0].count
    by_index = {}
    for segment in segments:
        if segment.index in by_index:
            raise EdgekitError(f"{by_index[segment.index].path} and {segment.path} are both segment {segment.index} "
                               f"of {count}: give each segment once")
        if not 0 <= segment.index < count:
            raise EdgekitError(f"{segment.path} says it is segment {segment.index} of {count}, which cannot be: "
                               "segments count from 0; cut the model again with `edgekit segment`")
        by_index[segment.index] = segment
    missing = [index for index in range(count) if index not in by_index]
    if missing:
        first = segments[0]
        named = SEGMENT_FILE.match(os.path.basename(first.path))
        expected = segment_names(first.stem, count, "_edgetpu.tflite" if named and named["edgetpu"] else ".tflite")
        names = ", ".join(expected[index] for index in missing)
        which = (f"segment {missing[0]} of {count} ({names}) is" if len(missing) == 1 else
                 f"segments {', '.join(map(str, missing))} of {count} ({names}) are")
        raise EdgekitError(f"{where}: {which} missing: give all {count} segments of the model")
    return [by_index[index] for index in range(count)]


def open_segments(paths, device="auto", num_threads=None, notice=print_notice, backend=None):
    """Find a model's segments (`find_segments`) and open each on its device: an `OpenedSegments`.

    device: "auto" (an Edge TPU per compiled segment when there are enough, else the CPU twins), "cpu", "usb",
    "pci", or a list such as "usb:0,usb:1" (edgetpu.segment_devices). num_threads: CPU threads of each
    segment's interpreter, by default the cores shared out between the segments, since they run at once.
    Raises EdgekitError in one line (DeviceError for a device that cannot be used, naming the segment)."""
    segments = _found_segments(paths)
    device = device or "auto"
    compiled = [segment.compiled for segment in segments]
    # Only a compiled segment can use an Edge TPU, and only through libedgetpu: without it, hardware on the bus
    # counts for nothing and "auto" runs the CPU twins, as open_model does for one model.
    usable = any(compiled) and device.strip().lower() != "cpu" and edgetpu.library_available()
    found = edgetpu.list_edge_tpus() if usable else []
    devices = edgetpu.segment_devices(device, compiled, found)
    threads = num_threads or max(1, (os.cpu_count() or 1) // len(segments))
    opened = []
    for segment, where in zip(segments, devices):
        try:
            opened.append(open_model(segment.path, device=where, num_threads=threads, backend=backend, notice=notice))
        except DeviceError as e:
            raise DeviceError(f"segment {segment.index} of {segment.count} on {where}: {e}") from e
    result = OpenedSegments(opened, [segment.path for segment in segments], [o.device for o in opened],
                            segments[0].model_name)
    ChainedInterpreter(result)  # the wiring is checked now, with the files named, not at the first invoke
    return result


def chained_model(opened, requested=None):
    """An `interpreter.OpenedModel` whose interpreter is the `ChainedInterpreter` of `opened` (OpenedSegments),
    so that `runtime.pipeline.Runner` runs the segments as one model: `model` is the last segment's (its
    metadata and outputs tell the task), `path` the files that ran joined by ", ", `device` the devices joined
    by commas, `requested_path` what was asked for (default: the segment files), `segments` `opened`."""
    last = opened.segments[-1]
    ran = ", ".join(str(segment.path) for segment in opened.segments)
    return OpenedModel(ChainedInterpreter(opened), last.model, ran, ",".join(opened.devices), last.backend,
                       requested or ", ".join(opened.paths), opened)


class ChainedInterpreter:
    """The segments of one model as one tf.lite-style interpreter: `invoke` runs them one after the other,
    copying each tensor that crosses a cut into the segment that reads it.

    Its inputs are the first segment's, its outputs the last segment's; their details are the segments' own
    except `index`, which is the chain's: inputs 0..I-1, then outputs I..I+O-1. `tensor(index)` gives the
    segment's own view, so pycoral's adapters (`common.set_input`, `output_tensor`) work unchanged.
    `last_invoke_ms` holds each segment's invoke time of the last `invoke`.
    """

    def __init__(self, segments):
        """`segments`: an `OpenedSegments`, or allocated interpreters in segment order."""
        if hasattr(segments, "segments"):
            self._interpreters = segments.interpreters
            self._names = [str(segment.path) for segment in segments.segments]
        else:
            self._interpreters = list(segments)
            self._names = [f"segment {k}" for k in range(len(self._interpreters))]
        if not self._interpreters:
            raise PipelineSetupError("At least one interpreter expected")
        inputs = [interpreter.get_input_details() for interpreter in self._interpreters]
        outputs = [interpreter.get_output_details() for interpreter in self._interpreters]
        try:
            tensors_carried([[d["name"] for d in details] for details in inputs],
                            [[d["name"] for d in details] for details in outputs])
        except PipelineSetupError as e:
            raise PipelineSetupError(f"{', '.join(self._names)}: {e}") from None
        self._feeds = self._plan_feeds(inputs, outputs)
        self._inputs = [dict(d, index=i) for i, d in enumerate(inputs[0])]
        self._outputs = [dict(d, index=len(inputs[0]) + i) for i, d in enumerate(outputs[-1])]
        # chain index -> (the interpreter holding it, its index there)
        self._where = {i: (self._interpreters[0], d["index"]) for i, d in enumerate(inputs[0])}
        self._where.update({len(inputs[0]) + i: (self._interpreters[-1], d["index"])
                            for i, d in enumerate(outputs[-1])})
        self.last_invoke_ms = []

    def _plan_feeds(self, inputs, outputs):
        """For each step k (0: before segment 0 runs, k: after segment k-1 ran), the copies to make then:
        (source interpreter, its tensor index, destination interpreter, its tensor index)."""
        count = len(self._interpreters)
        feeds = [[] for _ in range(count)]
        for target in range(1, count):
            for wanted in inputs[target]:
                source, details = None, None
                for k in range(target - 1, -1, -1):
                    details = next((d for d in outputs[k] if d["name"] == wanted["name"]), None)
                    if details is not None:
                        source = k
                        break
                if details is None:
                    details = next(d for d in inputs[0] if d["name"] == wanted["name"])
                step = 0 if source is None else source + 1
                if tuple(details["shape"]) != tuple(wanted["shape"]) or details["dtype"] != wanted["dtype"]:
                    raise PipelineSetupError(
                        f"{self._names[target]}: its input '{wanted['name']}' is {list(wanted['shape'])} "
                        f"{np.dtype(wanted['dtype']).name}, but {self._names[0 if source is None else source]} "
                        f"gives {list(details['shape'])} {np.dtype(details['dtype']).name}: give the segments of one "
                        "model only")
                feeds[step].append((self._interpreters[0 if source is None else source], details["index"],
                                    self._interpreters[target], wanted["index"]))
        return feeds

    def get_input_details(self):
        return [dict(d) for d in self._inputs]

    def get_output_details(self):
        return [dict(d) for d in self._outputs]

    def get_signature_list(self):
        # The segments' signatures, if any, describe parts of the model, not the whole.
        return {}

    def allocate_tensors(self):
        for interpreter in self._interpreters:
            interpreter.allocate_tensors()

    def _located(self, index):
        try:
            return self._where[index]
        except KeyError:
            raise ValueError(f"tensor {index} is neither an input nor an output of this chain of segments "
                             f"(inputs 0-{len(self._inputs) - 1}, outputs {len(self._inputs)}-"
                             f"{len(self._inputs) + len(self._outputs) - 1})") from None

    def set_tensor(self, index, value):
        interpreter, own = self._located(index)
        interpreter.set_tensor(own, value)

    def get_tensor(self, index):
        interpreter, own = self._located(index)
        return interpreter.get_tensor(own)

    def tensor(self, index):
        interpreter, own = self._located(index)
        return interpreter.tensor(own)

    def invoke(self):
        """Run every segment in order. A segment's failure is a RuntimeError naming it."""
        times = []
        for k, interpreter in enumerate(self._interpreters):
            for source, source_index, target, target_index in self._feeds[k]:
                # Views straight into both interpreters' buffers: one copy, and no view outlives the line.
                np.copyto(target.tensor(target_index)(), source.tensor(source_index)())
            start = time.perf_counter()
            try:
                interpreter.invoke()
            except (RuntimeError, ValueError) as e:
                detail = " ".join(str(e).split())
                raise RuntimeError(f"segment {k} ({self._names[k]}): {detail}") from e
            times.append((time.perf_counter() - start) * 1000.0)
        self.last_invoke_ms = times
