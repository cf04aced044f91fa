"""Run edgetpu_compiler when it is installed, and say what to do when it is not.

The compiler is a closed x86-64 Linux binary from Coral's apt repository. We find it (EDGETPU_COMPILER, then
PATH), build its command line, run it with a time limit into a private folder inside --out-dir, and only then
move the finished files into place, so a failed or interrupted compile leaves nothing half-written.
"""

import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from collections import namedtuple
from pathlib import Path

from edgekit.compiler import check, compiler_log, rules
from edgekit.errors import EdgekitError
from edgekit.files import writable_folder

Options = namedtuple("Options", "out_dir min_runtime segments search_delegate step intermediate timeout "
                                "multiple_subgraphs partition")
"""partition: how --segments cuts: "params" (the compiler's own split, by parameter bytes) or "profile" (cuts moved
until the segments' latencies on the attached Edge TPUs even out: compiler/partition.py)."""
DEFAULT_OPTIONS = Options(out_dir=".", min_runtime=None, segments=None, search_delegate=False, step=None,
                          intermediate=(), timeout=180, multiple_subgraphs=False, partition="params")
CompileResult = namedtuple("CompileResult", "command returncode report outputs predictions disagreements "
                                            "stdout learning_heads partition streaming", defaults=(None, ()))
"""learning_heads: {model path: check.LearningHead} for the models whose on-device learning head this compile
kept on the CPU by itself (their tensors added to --intermediate_tensors); {} for others. partition: with
--partition profile, a `partition.ProfiledPartition` (and `command` the list of the segments' compile commands);
None otherwise. streaming: a `StreamingAdvice` for each compiled model whose parameters do not all fit the
Edge TPU's cache."""
StreamingAdvice = namedtuple("StreamingAdvice", "model streamed segments command")
"""A compiled model whose parameters stream over USB/PCIe on every inference: the input model, the bytes
streamed, how many segments to try next (one more than this compile made) and the command that makes them."""

GET_IT = ("install Coral's `edgetpu-compiler` package (x86-64 Linux: add https://packages.cloud.google.com/apt "
          "'coral-edgetpu-stable' to apt, then `sudo apt-get install edgetpu-compiler`), or run it in an "
          "x86-64 Linux container (e.g. `docker run --platform linux/amd64 debian:bookworm` with that package) "
          "and set EDGETPU_COMPILER to a script that calls it")
# Seconds we wait beyond the compiler's own timer before we stop it ourselves.
GRACE_SECONDS = 30


class CompilerMissingError(EdgekitError):
    exit_code = 3

    def __init__(self, message, predictions=None):
        super().__init__(message)
        self.predictions = predictions or {}


class CompileFailedError(EdgekitError):
    exit_code = 1

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


def find_compiler(environ=None):
    """Path of edgetpu_compiler (EDGETPU_COMPILER wins over PATH), or None."""
    environ = os.environ if environ is None else environ
    chosen = environ.get("EDGETPU_COMPILER")
    if chosen:
        path = shutil.which(chosen, path=environ.get("PATH"))
        if path is None:
            raise CompilerMissingError(f"EDGETPU_COMPILER={chosen} is not an executable file; point it at "
                                       "edgetpu_compiler or unset it")
        return path
    return shutil.which("edgetpu_compiler", path=environ.get("PATH"))


def missing_message(machine=None, system=None):
    """One line: why there is no compiler here and where to get it."""
    machine, system = machine or platform.machine(), system or platform.system()
    if machine.lower() not in ("x86_64", "amd64") or system != "Linux":
        return (f"edgetpu_compiler runs only on x86-64 Linux and this host is {system} {machine}; "
                f"compile on an x86-64 Linux machine or container, or {GET_IT}")
    return f"edgetpu_compiler was not found on PATH or in EDGETPU_COMPILER; {GET_IT}"


def build_command(compiler, models, out_dir, options):
    """The compiler's argv for these options (long flags, as documented for compiler 16)."""
    cmd = [compiler, "--out_dir", str(out_dir), "--show_operations"]
    if options.min_runtime is not None:
        cmd += ["--min_runtime_version", str(options.min_runtime)]
    if options.segments:
        cmd += ["--num_segments", str(options.segments)]
    if options.intermediate:
        cmd += ["--intermediate_tensors", ",".join(options.intermediate)]
    if options.multiple_subgraphs:
        cmd += ["--enable_multiple_subgraphs"]
    if options.search_delegate:
        cmd += ["--search_delegate"]
        if options.step:
            cmd += ["--delegate_search_step", str(options.step)]
    if options.timeout:
        cmd += ["--timeout_sec", str(options.timeout)]
    return cmd + [str(m) for m in models]


def validate(models, options=DEFAULT_OPTIONS):
    """Read every model first: a bad file is a one-line error before the compiler ever runs."""
    names = [Path(m).name for m in models]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise EdgekitError(f"{duplicate}: given twice (or two models share the name); the outputs would "
                           "overwrite each other, so rename one")
    runtime = options.min_runtime or rules.DEFAULT_RUNTIME
    predictions = {}
    for m in models:
        model = _readable_cpu_model(m)
        predictions[str(m)] = check.predict(model, runtime, options.multiple_subgraphs,
                                            check.learning_head_in_file(model))
    for path, p in predictions.items():
        # Certain failures are refused up front; an op version we think too new is left to the compiler,
        # since our version table is derived, not the compiler's own.
        if p.fatal and p.fatal.kind in ("not_quantized", "dynamic"):
            raise check.UnusableModelError(f"{path}: {p.fatal.message}; {p.fatal.fix}")
    return predictions


def _readable_cpu_model(path):
    from edgekit.tflite.model import read_model

    model = read_model(path)
    if model.is_edgetpu_compiled:
        raise check.UnusableModelError(f"{path}: already compiled for the Edge TPU (it has edgetpu-custom-op); "
                                       "compile the CPU model it came from")
    return model


def learning_heads(predictions):
    """{model path: check.LearningHead} of the models that end in an on-device learning head."""
    return {path: p.learning_head for path, p in predictions.items() if p.learning_head is not None}


def with_learning_heads(options, predictions):
    """`options` with the tensor where each learning head begins added to `intermediate`, so that the compiler
    leaves the head on the CPU (check.IMPRINTING_HEAD_WHY). -i names tensors of every model compiled together,
    so a model with such a head is compiled on its own."""
    heads = learning_heads(predictions)
    if not heads:
        return options
    if len(predictions) > 1:
        path, head = next(iter(heads.items()))
        raise check.UnusableModelError(f"{path}: an {head.kind} model is compiled on its own (its head is kept on "
                                       "the CPU with --intermediate_tensors, which would apply to every model "
                                       "compiled with it); compile it in a separate `edgekit compile`")
    added = tuple(h.tensor for h in heads.values() if h.tensor not in options.intermediate)
    return options._replace(intermediate=tuple(options.intermediate) + added)


def compile_models(models, options=DEFAULT_OPTIONS, environ=None):
    """Compile MODELS together. A model ending in an on-device learning head gets --intermediate_tensors so the
    head stays on the CPU (`with_learning_heads`). With options.partition "profile", one model is cut into
    options.segments by latency measured on the Edge TPUs (`partition.compile_profiled`). Raises
    CompilerMissingError, CompileFailedError or input errors."""
    from edgekit.compiler import partition

    if options.partition not in partition.PARTITIONS:
        raise EdgekitError(f"unknown --partition '{options.partition}': use {' or '.join(partition.PARTITIONS)}")
    if options.partition == "profile":
        return partition.compile_profiled(models, options, environ)
    predictions = validate(models, options)
    options = with_learning_heads(options, predictions)
    out = Path(writable_folder(options.out_dir, "--out-dir", what="the compiled model there"))
    try:
        compiler = find_compiler(environ)
    except CompilerMissingError as e:
        raise CompilerMissingError(str(e), predictions) from None
    if compiler is None:
        raise CompilerMissingError(missing_message(), predictions)
    with tempfile.TemporaryDirectory(dir=out, prefix=".edgekit-compile-") as work:
        cmd = build_command(compiler, [os.path.abspath(m) for m in models], work, options)
        limit = (options.timeout or 180) + GRACE_SECONDS
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=limit,
                                 env=None if environ is None else dict(environ))
        except subprocess.TimeoutExpired:
            raise CompileFailedError(f"edgetpu_compiler did not finish within {limit} s; raise --timeout or "
                                     "retry with --search-delegate") from None
        except OSError as e:
            raise CompilerMissingError(f"{compiler}: cannot be run ({e.strerror}); {GET_IT}") from None
        parsed = compiler_log.parse_output(run.stdout + "\n" + run.stderr)
        for log in sorted(Path(work).glob("*.log")):
            parsed = compiler_log.merge_log(parsed, log.read_text(errors="replace"))
        produced = sorted(p for p in Path(work).iterdir() if p.suffix == ".tflite")
        disagreements = _disagreements(parsed, predictions)
        result = CompileResult(cmd, run.returncode, parsed, [], predictions, disagreements, run.stdout,
                               learning_heads(predictions))
        if run.returncode != 0 or parsed.fatal or not produced:
            raise CompileFailedError(failure_message(models, parsed, run.returncode, run.stderr), result)
        outputs = [_move(p, out) for p in sorted(Path(work).iterdir()) if p.is_file()]
    # The compiler named files in our private folder; report where they are now.
    models = [m._replace(output_model=str(out / Path(m.output_model).name)) if m.output_model else m
              for m in parsed.models]
    return result._replace(outputs=[str(p) for p in outputs if p.suffix == ".tflite"],
                           report=parsed._replace(models=models), streaming=streaming_advice(models, options))


def streaming_advice(reports, options):
    """A `StreamingAdvice` for each compiled model (compiler_log reports) that streams parameters off chip:
    the compiler's log is the real measure of what fits, which `check`'s count (parameter bytes only) can
    only estimate, since compiled parameters and activations take cache space of their own."""
    streamed = {}
    for report in reports:
        if report.off_chip_streamed and report.input_model:
            # A segmented compile logs each segment; the advice is about the model they came from.
            streamed[report.input_model] = streamed.get(report.input_model, 0) + report.off_chip_streamed
    segments = (options.segments or 1) + 1
    return tuple(StreamingAdvice(model, total, segments, f"edgekit compile {shlex.quote(model)} --segments {segments}")
                 for model, total in streamed.items())


def _move(path, out):
    # os.replace within one filesystem is atomic: readers see the old file or the whole new one.
    target = out / path.name
    try:
        os.replace(path, target)
    except OSError as e:
        raise EdgekitError(f"{target}: cannot write the compiled model there ({e.strerror or e}); "
                           "choose another --out-dir") from None
    return target


def _disagreements(parsed, predictions):
    found = {}
    for model in parsed.models:
        for path, prediction in predictions.items():
            if model.input_model and Path(model.input_model).name == Path(path).name and model.rows:
                found[path] = compiler_log.compare(model.rows, prediction)
    return found


def failure_message(models, parsed, returncode, stderr=""):
    names = ", ".join(str(m) for m in models)
    if parsed.fatal:
        detail = next((e[len("ERROR: "):] for e in parsed.errors if "Didn't find op" in e), "")
        reason = parsed.fatal.message.rstrip(".") + (f" ({detail.split('. ')[0]})" if detail else "")
        return f"{names}: edgetpu_compiler failed: {reason}; {parsed.fatal.fix}"
    if parsed.errors:
        return f"{names}: edgetpu_compiler failed: {parsed.errors[0]}; {compiler_log.GENERIC_FIX}"
    said = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    return (f"{names}: edgetpu_compiler failed (exit status {returncode})"
            + (f": {said}" if said else " without a reason") + f"; {compiler_log.GENERIC_FIX}")
