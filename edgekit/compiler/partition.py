"""Segments of a model for pipelining: where to cut it, and the files.

`segment_model` is `edgekit segment`: it cuts a CPU .tflite into N segment files, by parameter bytes (balanced,
as edgetpu_compiler --num_segments splits) or by latency measured on the CPU with one-thread interpreters, one
per segment as a pipeline runs them. `compile_profiled` is `edgekit compile --segments N --partition profile`:
Coral's profiling partitioner (libcoral tools/partitioner, https://coral.ai/docs/edgetpu/compiler/): candidate
segments are compiled one by one and timed on the attached Edge TPUs, and the cuts move until the slowest and
fastest segments are close. Both search with `tflite.segments.cuts_by_cost`.
"""

import math
import os
import statistics
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.files import write_atomic, writable_folder
from edgekit.tflite import segments
from edgekit.tflite.graph_edit import GraphEditor
from edgekit.tflite.metadata import read_edgekit_metadata, write_sidecar
from edgekit.tflite.model import read_model

BY = ("params", "latency")
PARTITIONS = ("params", "profile")
# Timed invokes per candidate segment, after one untimed: libcoral's partitioner times kNumInferences = 10.
DEFAULT_REPEATS = 10
# The CPU search stops when the slowest and fastest segments' bounds are within this share of the slowest:
# latencies on a shared CPU vary by a few percent from run to run, and a finer target would chase that noise.
CPU_TOLERANCE = 0.05
# partition_with_profiling's --diff_threshold_ns default: 1 ms between the bounds on Edge TPUs.
EDGETPU_TOLERANCE_MS = 1.0

SegmentedModel = namedtuple("SegmentedModel", "model by files cuts segments parameter_bytes total_parameter_bytes "
                                              "latency_ms measured")
"""What `segment_model` wrote: the whole model's path, how the cuts were chosen ("params" or "latency"), the
segment files in order, the cuts (operator indices where segments 1..N-1 start), a `tflite.segments.SegmentPlan`
per segment (operators, input and output tensor names), the parameter bytes each segment holds and the whole
model's, the CPU latency of each segment in ms with --by latency (None otherwise), and how many distinct
candidate segments were timed (0 for params)."""

ProfiledPartition = namedtuple("ProfiledPartition", "cuts latency_ms bounds measured devices cpu_segments")
"""How `compile --partition profile` cut: the cuts, each compiled segment's Edge TPU latency in ms, the
(fastest, slowest) segment latencies of the parameter split it started from, how many distinct candidate
segments were compiled and timed, the devices, and the CPU segment files (the compiled ones' CPU twins)."""


class ProfilingUnavailableError(EdgekitError):
    """--partition profile without the Edge TPUs or the compiler it needs (compile's exit code for 'no compiler')."""

    exit_code = 3


def check_segment_count(path, count, facts):
    """One line for a segment count that cannot be: under 2, more than the operators, or more than the places a
    segment may start."""
    if count < 2:
        raise EdgekitError(f"{path}: --segments {count}: a model is cut into 2 segments or more; give --segments 2 "
                           "or more")
    if count > facts.op_count:
        raise EdgekitError(f"{path}: --segments {count} is more than its {facts.op_count} operators; give "
                           f"--segments {facts.op_count} or fewer")
    possible = len(facts.boundaries) + 1
    if count > possible:
        raise EdgekitError(f"{path}: --segments {count}: only {possible} segments are possible, since operators "
                           f"that share state stay in one segment; give --segments {possible} or fewer")


def _refuse_compiled(path, model, count):
    if model.is_edgetpu_compiled:
        from edgekit.runtime.interpreter import cpu_twin_path

        twin = cpu_twin_path(model)
        source = twin if os.path.isfile(twin) else "CPU_MODEL"
        raise EdgekitError(f"{path}: already compiled for the Edge TPU (its operators are one edgetpu-custom-op), "
                           "so it cannot be cut; segment the CPU model it came from, or let the compiler split "
                           f"that: `edgekit compile {source} --segments {count}`")


def _read(path, count):
    """The model, its bytes and a cutter, after the checks every segmenting shares."""
    model = read_model(path)
    _refuse_compiled(path, model, count)
    data = Path(path).read_bytes()
    cutter = segments.ModelCutter(data, path)
    check_segment_count(path, count, cutter.facts)
    return model, cutter


def segment_model(model_path, count, out_dir, by="params", repeats=DEFAULT_REPEATS, tolerance=CPU_TOLERANCE):
    """Cut MODEL into `count` segments written to `out_dir` as `<stem>_segment_K_of_N.tflite`; returns a
    `SegmentedModel`. by="params" balances parameter bytes; by="latency" starts there and moves the cuts until
    the segments' CPU latencies (one thread each) are within `tolerance` of the slowest."""
    path = os.fspath(model_path)
    if by not in BY:
        raise EdgekitError(f"unknown --by '{by}': use {' or '.join(BY)}")
    model, cutter = _read(path, count)
    out = writable_folder(out_dir, "--out", what="the segments there")
    split = segments.cuts_by_parameters(cutter.facts, count)
    cuts, latency, measured = split.cuts, None, 0
    if by == "latency":
        timed = cuts_by_cpu_latency(cutter, count, split.cuts, repeats, tolerance)
        cuts, latency, measured = timed.cuts, [round(ms, 3) for ms in timed.costs], timed.evaluated
    cutter.check_cuts(cuts)
    files = write_segments(cutter, model, cuts, out)
    plans = [cutter.plan(k, start, end) for k, (start, end) in enumerate(segments.segment_bounds(cuts,
                                                                                                cutter.op_count))]
    return SegmentedModel(path, by, files, cuts, plans, [p.parameter_bytes for p in plans],
                          segments.parameter_bytes(cutter.facts), latency, measured)


def segment_metadata(model, model_bytes, index, count):
    """The whole model's edgekit metadata with the "segment" field that ties segment `index` to it."""
    segment = {"index": index, "count": count, "model": segments.model_digest(model_bytes),
               "name": os.path.basename(model.path)}
    return dict(read_edgekit_metadata(model), segment=segment)


def write_segments(cutter, model, cuts, out):
    """Write the segments `cuts` make into folder `out`, each atomically (all are built before any is written);
    returns their paths."""
    bounds = segments.segment_bounds(cuts, cutter.op_count)
    stem = Path(model.path).stem
    built = [cutter.segment(start, end, segment_metadata(model, cutter.model_bytes, k, len(bounds)))
             for k, (start, end) in enumerate(bounds)]
    return [write_atomic(os.path.join(out, name), data)
            for name, data in zip(segments.segment_names(stem, len(bounds)), built)]


# --- measuring ---------------------------------------------------------------------------------------------


def _sample_input(detail, rng):
    """Random values for a model input: the full range of 8-bit types (pictures), [0, 1) for floats, zeros for
    other types, whose meaning (indices, sizes) random values could break."""
    shape, dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])
    if dtype in (np.uint8, np.int8):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max + 1, shape).astype(dtype)
    if dtype.kind == "f":
        return rng.random(shape).astype(dtype)
    return np.zeros(shape, dtype)


def sample_tensors(cutter, folder, seed=0):
    """{tensor name: value} of every tensor the model feeds or computes, for one random input: what a candidate
    segment is fed while it is timed, so that data-dependent operators (non-maximum suppression) see values
    like the real ones. The model is run once with every operator output made a model output."""
    from edgekit.runtime.interpreter import invoke, open_model
    from edgekit.tflite.graph_edit import litert_schema

    editor = GraphEditor.from_bytes(cutter.model_bytes)
    handles = (litert_schema().TensorType.RESOURCE, litert_schema().TensorType.VARIANT)
    every = [int(t) for op in editor.graph.operators for t in op.outputs
             if t >= 0 and editor.graph.tensors[t].type not in handles]
    editor.set_outputs(list(dict.fromkeys([int(t) for t in editor.graph.outputs] + every)))
    path = os.path.join(folder, "every_tensor.tflite")
    Path(path).write_bytes(editor.to_bytes())
    opened = open_model(path, device="cpu", num_threads=1)
    interpreter, rng = opened.interpreter, np.random.default_rng(seed)
    values = {}
    for detail in interpreter.get_input_details():
        values[detail["name"]] = _sample_input(detail, rng)
        interpreter.set_tensor(detail["index"], values[detail["name"]])
    invoke(opened)
    values.update({d["name"]: interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()})
    return values


def invoke_ms(opened, values, repeats=DEFAULT_REPEATS):
    """The median latency in ms of `repeats` invokes of an opened segment fed from `values` by tensor name,
    after one untimed invoke (the first pays for delegate set-up and, on an Edge TPU, loading parameters)."""
    from edgekit.runtime.interpreter import invoke

    interpreter = opened.interpreter
    for detail in interpreter.get_input_details():
        if detail["name"] not in values:
            raise EdgekitError(f"{opened.path}: input '{detail['name']}' is no tensor of the whole model, so it "
                               "cannot be fed while timing; segment the model again")
        interpreter.set_tensor(detail["index"], values[detail["name"]])
    invoke(opened)
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        invoke(opened)
        samples.append((time.perf_counter() - began) * 1000.0)
    return statistics.median(samples)


def cuts_by_cpu_latency(cutter, count, start_cuts, repeats=DEFAULT_REPEATS, tolerance=CPU_TOLERANCE):
    """`tflite.segments.CostSplit` of cuts that even out the segments' CPU latency, one thread per segment."""
    from edgekit.runtime.interpreter import open_model

    with tempfile.TemporaryDirectory(prefix="edgekit-segment-") as work:
        values = sample_tensors(cutter, work)

        def cpu_ms(start, end, index):
            path = os.path.join(work, f"operators_{start}_{end}.tflite")
            Path(path).write_bytes(cutter.segment(start, end))
            return invoke_ms(open_model(path, device="cpu", num_threads=1), values, repeats)

        return _search(cutter, count, start_cuts, cpu_ms, lambda slowest: tolerance * slowest)


def _search(cutter, count, start_cuts, cost, tolerance_of):
    """cuts_by_cost from `start_cuts`, whose segments are measured first (a failure there is raised, not
    skipped) and give the tolerance: tolerance_of(slowest ms)."""
    bounds = segments.segment_bounds(start_cuts, cutter.op_count)
    known = {(start, end): cost(start, end, k) for k, (start, end) in enumerate(bounds)}
    if not all(math.isfinite(ms) for ms in known.values()):
        raise EdgekitError(f"{cutter.name}: the parameter split's segments cannot all be measured; segment with "
                           "--by params, or compile with --partition params")
    return segments.cuts_by_cost(cutter.facts, count, cost, start_cuts, tolerance_of(max(known.values())),
                                 known=known)


# --- compile --partition profile ---------------------------------------------------------------------------


def edge_tpu_devices():
    """The attached Edge TPUs as --device names them, PCIe first (the faster link): "pci:0", ..., "usb:0", ..."""
    from edgekit.runtime import edgetpu

    found = [device.type for device in edgetpu.list_edge_tpus()]
    return [f"{kind}:{i}" for kind in ("pci", "usb") for i in range(found.count(kind))]


def missing_for_profiling(path, count, devices, compiler_path):
    """The one line for what --partition profile lacks here, or None when it has all it needs."""
    short = len(devices) < count
    if not short and compiler_path is not None:
        return None
    lacks = [f"{len(devices)} of the {count} Edge TPUs it needs" if short else None,
             "no edgetpu_compiler" if compiler_path is None else None]
    fixes = [f"attach {count} Edge TPUs (one per segment)" if short else None,
             "install edgetpu_compiler (x86-64 Linux; `edgekit compile` without it says how)"
             if compiler_path is None else None]
    return (f"{path}: --partition profile compiles candidate segments and times each on its own Edge TPU, but "
            f"this machine has {' and '.join(filter(None, lacks))}; {' and '.join(filter(None, fixes))}, or leave "
            "out --partition profile to let the compiler split by parameter size")


def compile_profiled(models, options, environ=None, devices=None, repeats=DEFAULT_REPEATS):
    """`edgekit compile MODEL --segments N --partition profile`: a `compiler.CompileResult` of the N compiled
    segments, its `partition` a `ProfiledPartition`. Each candidate segment is compiled on its own (as libcoral's
    partitioner does: --search_delegate, one segment per compile) and timed on Edge TPU K for segment K.
    devices: the --device names to time on (default: the attached Edge TPUs)."""
    from edgekit.compiler import compiler
    from edgekit.runtime.interpreter import open_model

    if len(models) != 1:
        raise EdgekitError(f"--partition profile takes one model ({len(models)} given), since its segments are "
                           "timed apart; compile the others in another `edgekit compile`")
    path, count = os.fspath(models[0]), options.segments or 0
    if count < 2:
        raise EdgekitError(f"{path}: --partition profile moves the cuts between segments; give --segments 2 or "
                           "more")
    compiler.validate([path], options)
    model, cutter = _read(path, count)
    devices = list(edge_tpu_devices() if devices is None else devices)
    missing = missing_for_profiling(path, count, devices, compiler.find_compiler(environ))
    if missing:
        raise ProfilingUnavailableError(missing)
    out = writable_folder(options.out_dir, "--out-dir", what="the compiled segments there")
    single = options._replace(segments=None, partition=PARTITIONS[0], search_delegate=True)
    stem = Path(path).stem
    with tempfile.TemporaryDirectory(dir=out, prefix=".edgekit-profile-") as work:
        values = sample_tensors(cutter, work)

        def edgetpu_ms(start, end, index):
            folder = os.path.join(work, f"operators_{start}_{end}")
            os.makedirs(folder, exist_ok=True)
            cpu = os.path.join(folder, f"{stem}_operators_{start}_{end}.tflite")
            Path(cpu).write_bytes(cutter.segment(start, end))
            try:
                compiled = compiler.compile_models([cpu], single._replace(out_dir=folder), environ).outputs[0]
            except compiler.CompileFailedError:
                return math.inf     # libcoral's partitioner, too, skips candidates the compiler fails on
            return invoke_ms(open_model(compiled, device=devices[index], num_threads=1), values, repeats)

        start = segments.cuts_by_parameters(cutter.facts, count).cuts
        found = _search(cutter, count, start, edgetpu_ms, lambda slowest: EDGETPU_TOLERANCE_MS)
    cpu_files = write_segments(cutter, model, found.cuts, out)
    results = [compiler.compile_models([cpu], single._replace(out_dir=out), environ) for cpu in cpu_files]
    for k, result in enumerate(results):
        # The compiler may drop metadata; the sidecar keeps what ties the compiled segment to its set.
        for compiled in result.outputs:
            if "segment" not in read_edgekit_metadata(read_model(compiled)):
                write_sidecar(compiled, segment_metadata(model, cutter.model_bytes, k, count))
    partition = ProfiledPartition(found.cuts, [round(ms, 3) for ms in found.costs],
                                  tuple(round(ms, 3) for ms in found.bounds), found.evaluated, devices[:count],
                                  cpu_files)
    return merged_result(results, partition)


def merged_result(results, partition):
    """One `compiler.CompileResult` for segments compiled one by one: their commands, models, outputs."""
    from edgekit.compiler.compiler_log import CompileReport

    reports = [r.report for r in results]
    report = CompileReport(reports[0].version, all(r.compiled for r in reports),
                           sum(r.compile_ms or 0 for r in reports), [m for r in reports for m in r.models], None,
                           [e for r in reports for e in r.errors])
    merged = {field: {k: v for r in results for k, v in getattr(r, field).items()}
              for field in ("predictions", "disagreements", "learning_heads")}
    return results[0]._replace(command=[r.command for r in results], returncode=0, report=report,
                               outputs=[o for r in results for o in r.outputs],
                               stdout="\n".join(r.stdout for r in results), partition=partition, **merged)
