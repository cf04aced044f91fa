"""`edgekit check`: predict, op by op, what edgetpu_compiler will map to the Edge TPU, and why the rest stays
on the CPU.

Exit codes: 0 = analysed (1 with --strict when an op would run on the CPU), 2 = unusable model.
"""

import sys
from collections import Counter

import click

from edgekit.cli.common import emit_json, handles_errors, json_option
from edgekit.compiler import check, rules
from edgekit.compiler.check import cache_mib_text, format_bytes


@click.command("check")
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("--min-runtime", type=click.IntRange(rules.ALL_RUNTIMES, rules.NEWEST_RUNTIME),
              default=rules.DEFAULT_RUNTIME, show_default=True,
              help="Oldest Edge TPU runtime to support (the compiler's -m).")
@click.option("-a", "--multiple-subgraphs", is_flag=True, help="Predict for -a: no cut after a CPU op.")
@click.option("--strict", is_flag=True, help="Exit 1 if any op would run on the CPU (an imprinting head, there on "
                                             "purpose, excepted).")
@json_option()
@handles_errors
def check_command(model, min_runtime, multiple_subgraphs, strict, as_json):
    """Predict, op by op, what edgetpu_compiler will map to the Edge TPU, and why the rest stays on the CPU;
    how many Edge TPUs keep every parameter on chip, and the commands that segment and run it over them.

    \b
    Example:
      edgekit check deeplabv3_mnv2_dm05_pascal_quant.tflite --strict
    """
    prediction = check.check_file(model, min_runtime, multiple_subgraphs, allow_fatal=True)
    if as_json:
        emit_json(check.to_document(prediction))
    if prediction.fatal:
        check.raise_fatal(prediction)
    if not as_json:
        click.echo(format_prediction(prediction))
    if strict and check.unintended_cpu_ops(prediction):
        sys.exit(1)


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
    head = check.learning_head_text(p)
    if head:
        lines += ["", head]
    tpu = len(p.ops) - len(cpu)
    lines += ["", f"{tpu} of {len(p.ops)} ops on the Edge TPU, {len(cpu)} on the CPU",
              f"parameters of mapped ops: {format_bytes(p.parameter_bytes)}; predicted on chip "
              f"{format_bytes(p.cached_bytes)}, "
              f"streamed {format_bytes(p.streamed_bytes)} (cache ~{cache_mib_text()})"]
    lines += check.edgetpu_count_text(p.edgetpus)
    if p.fixes:
        lines += ["", "fixes:"] + [f"  - {f}" for f in p.fixes]
    return "\n".join(lines)
