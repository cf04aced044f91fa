"""`edgekit check`, `edgekit inspect` and `edgekit compile`: click commands over the compiler package.

Exit codes: check 0 = analysed (1 with --strict when an op would run on the CPU), 2 = unusable model;
inspect 0 = compiled model reported, 1 = not a compiled model, 2 = unreadable; compile 0 = compiled,
1 = the compiler failed or the output folder cannot be written, 2 = unusable model, 3 = no compiler here.
"""

import sys
from collections import Counter

import click

from edgekit.cli import _emit_json, handles_errors
from edgekit.compiler import check as check_mod, compiler, inspect as inspect_mod, rules
from edgekit.compiler.check import format_bytes as _bytes


@click.command("check")
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("--min-runtime", type=click.IntRange(10, 16), default=rules.DEFAULT_RUNTIME, show_default=True,
              help="Oldest Edge TPU runtime to support (the compiler's -m).")
@click.option("-a", "--multiple-subgraphs", is_flag=True, help="Predict for -a: no cut after a CPU op.")
@click.option("--strict", is_flag=True, help="Exit 1 if any op would run on the CPU.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def check(model, min_runtime, multiple_subgraphs, strict, as_json):
    """Predict, op by op, what edgetpu_compiler will map to the Edge TPU, and why the rest stays on the CPU.

    \b
    Example:
      edgekit check deeplabv3_mnv2_dm05_pascal_quant.tflite --strict
    """
    prediction = check_mod.check_file(model, min_runtime, multiple_subgraphs, allow_fatal=True)
    if as_json:
        _emit_json(check_mod.to_document(prediction))
    if prediction.fatal:
        check_mod.raise_fatal(prediction)
    if not as_json:
        click.echo(format_prediction(prediction))
    if strict and any(v.status == "cpu" for v in prediction.ops):
        sys.exit(1)


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def inspect_cmd(model, as_json):
    """Explain an Edge TPU compiled model: packages, executables, cached/streamed bytes, CPU ops.

    \b
    Example:
      edgekit inspect mobilenet_v2_1.0_224_quant_edgetpu.tflite --json
    """
    report = inspect_mod.inspect_file(model)
    if as_json:
        _emit_json(inspect_mod.to_document(report))
    if not report.compiled:
        click.echo(f"edgekit: error: {inspect_mod.not_compiled_message(model)}", err=True)
        sys.exit(1)
    if not as_json:
        click.echo(inspect_mod.format_text(report))


@click.command("compile")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("-o", "--out-dir", default=".", show_default=True, type=click.Path(file_okay=True),
              help="Folder for <name>_edgetpu.tflite and .log.")
@click.option("--min-runtime", type=click.IntRange(10, 16), help="Oldest Edge TPU runtime [compiler: 14].")
@click.option("--segments", type=click.IntRange(1, 64), help="Split for pipelining over N Edge TPUs.")
@click.option("--search-delegate", is_flag=True, help="On failure, retry with shorter prefixes (-d).")
@click.option("--step", type=click.IntRange(1), help="Ops per retry with --search-delegate (-k).")
@click.option("--intermediate", help="End the Edge TPU part at these tensors, comma-separated (-i).")
@click.option("-a", "--multiple-subgraphs", is_flag=True, help="Allow several Edge TPU subgraphs (experimental).")
@click.option("--timeout", type=click.IntRange(1), default=180, show_default=True, help="Compile time limit, s.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def compile_cmd(models, out_dir, min_runtime, segments, search_delegate, step, intermediate,
                multiple_subgraphs, timeout, as_json):
    """Run edgetpu_compiler on MODELS (co-compiled to share the cache) and explain the result.

    \b
    Example:
      edgekit compile mobilenet_v2_1.0_224_quant.tflite -o out/ --search-delegate --step 10
    """
    if step and not search_delegate:
        raise click.UsageError("--step only works with --search-delegate")
    options = compiler.Options(out_dir=out_dir, min_runtime=min_runtime, segments=segments,
                               search_delegate=search_delegate, step=step,
                               intermediate=tuple(t for t in (intermediate or "").split(",") if t),
                               timeout=timeout, multiple_subgraphs=multiple_subgraphs)
    try:
        result = compiler.compile_models(models, options)
    except compiler.CompilerMissingError as e:
        # Without the compiler, the next best thing is what it would most likely say.
        click.echo(f"edgekit: error: {e}", err=True)
        if as_json:
            _emit_json({"compiled": False, "error": str(e),
                        "predictions": {m: check_mod.to_document(p) for m, p in e.predictions.items()}})
        else:
            click.echo("\n\n".join(f"Predicted by edgekit check (no compiler ran):\n{format_prediction(p)}"
                                   for p in e.predictions.values()))
        sys.exit(e.exit_code)
    except compiler.CompileFailedError as e:
        if as_json and e.result is not None:
            _emit_json(compile_document(e.result, ok=False, error=str(e)))
        elif e.result is not None and e.result.stdout.strip():
            click.echo(e.result.stdout.rstrip())
        raise
    if as_json:
        _emit_json(compile_document(result, ok=True))
    else:
        click.echo(format_compile(result))


def compile_document(result, ok, error=None):
    return {
        "compiled": ok, "error": error, "command": result.command, "returncode": result.returncode,
        "outputs": result.outputs, "version": result.report.version, "compile_ms": result.report.compile_ms,
        "fatal": result.report.fatal._asdict() if result.report.fatal else None,
        "models": [dict(m._asdict(), rows=[r._asdict() for r in m.rows]) for m in result.report.models],
        "disagreements": {k: [d._asdict() for d in v] for k, v in result.disagreements.items()},
    }


def format_prediction(p):
    """A table like the compiler's, the op that cut the graph, then totals and fixes."""
    if p.fatal:
        # The compiler would stop before mapping anything: that is the whole prediction.
        return (f"{p.path}: the compiler would fail: {p.fatal.message}\n"
                + (f"  it would say: {p.fatal.compiler_says}\n" if p.fatal.compiler_says else "")
                + f"  fix: {p.fatal.fix}")
    rows = Counter((v.op, v.reason) for v in p.ops)
    lines = [f"{p.path}: predicted for edgetpu_compiler 16 (-m {p.min_runtime}"
             + (", -a)" if p.multiple_subgraphs else ")"), "",
             f"{'Operator':<31}{'Count':<11}Status"]
    lines += [f"{op:<31}{n:<11}{status}" for (op, status), n in rows.items()]
    cpu = [v for v in p.ops if v.status == "cpu"]
    if p.cut is not None:
        lines += ["", f"cut: op {p.cut.index} {p.cut.op} (v{p.cut.version}) runs on the CPU: {p.cut.detail}; "
                      "everything downstream of it stays on the CPU"]
    for v in cpu:
        if v.reason != rules.MORE_THAN_ONE_SUBGRAPH:
            lines.append(f"  op {v.index:<4} {v.op:<24} {v.detail}")
    tpu = len(p.ops) - len(cpu)
    lines += ["", f"{tpu} of {len(p.ops)} ops on the Edge TPU, {len(cpu)} on the CPU",
              f"parameters of mapped ops: {_bytes(p.parameter_bytes)}; predicted on chip {_bytes(p.cached_bytes)}, "
              f"streamed {_bytes(p.streamed_bytes)} (cache ~6.9 MiB)"]
    if p.fixes:
        lines += ["", "fixes:"] + [f"  - {f}" for f in p.fixes]
    return "\n".join(lines)


def format_compile(result):
    lines = [f"compiled with edgetpu_compiler {result.report.version or '?'} "
             f"in {result.report.compile_ms if result.report.compile_ms is not None else '?'} ms"]
    for m in result.report.models:
        lines += ["", f"{m.input_model} -> {m.output_model}",
                  f"  on-chip cache used {_bytes(m.on_chip_used)}, remaining {_bytes(m.on_chip_remaining)}, "
                  f"streamed off-chip {_bytes(m.off_chip_streamed)}",
                  f"  Edge TPU subgraphs {m.subgraphs}, ops {m.total_ops} "
                  f"(Edge TPU {m.tpu_ops if m.tpu_ops is not None else '?'}, CPU "
                  f"{m.cpu_ops if m.cpu_ops is not None else '?'})"]
        lines += [f"  {r.op or '':<31}{r.count or '':<11}{r.status}" for r in m.rows]
    for path, found in result.disagreements.items():
        lines.append("")
        if not found:
            lines.append(f"{path}: the compiler agrees with edgekit check")
        for d in found:
            lines.append(f"{path}: {d.op}: check predicted {d.predicted_cpu} on the CPU, the compiler left "
                         f"{d.compiler_cpu}")
    lines += ["", "written: " + ", ".join(result.outputs)]
    return "\n".join(lines)
