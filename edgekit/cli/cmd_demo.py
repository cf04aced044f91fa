"""`edgekit demo`, what `make demo` runs: the whole pipeline on a fresh machine, printed for people."""

import click

from edgekit.cli.cmd_bench import bench_document, format_bench
from edgekit.cli.cmd_check import format_prediction
from edgekit.cli.cmd_run import format_run, run_document
from edgekit.cli.common import handles_errors, json_option, print_output
from edgekit.demo import DEFAULT_ITERATIONS, DEFAULT_OUT, run_demo


@click.command("demo")
@click.option("--out", default=DEFAULT_OUT, show_default=True, type=click.Path(file_okay=False),
              help="Folder for the models, photos, report and annotated results.")
@click.option("-n", "--iterations", default=DEFAULT_ITERATIONS, show_default=True, help="Timed runs for the benchmark.")
@click.option("--runtime-only", is_flag=True,
              help="The runtime demo (a built-in colour classifier) even when the converter is installed.")
@json_option()
@handles_errors
def demo_command(out, iterations, runtime_only, as_json):
    """What `make demo` runs: convert EfficientNet-Lite0 (ImageNet weights) to int8 on scikit-image's
    photos, check / compile it for the Edge TPU, classify photos with it and benchmark it.

    Without the converter (`pip install "edgekit[demo]"`) it takes a built-in colour classifier through
    check, run and bench instead.

    \b
    Example:
      edgekit demo --out demo-out
    """
    result = run_demo(out, iterations, full=False if runtime_only else None)
    print_output(result, as_json, format_demo, demo_document)


def demo_document(result):
    """The JSON document `edgekit demo --json` prints."""
    from edgekit.compiler.check import summary

    document = {"kind": result.kind, "model": result.model}
    if result.conversion is not None:
        from edgekit.converters.api import to_document

        document["convert"] = to_document(result.conversion)
    document.update(check=summary(result.prediction), run=run_document(result.run),
                    bench=bench_document(result.bench), files=result.files)
    return document


def format_demo(result):
    if result.conversion is not None:
        from edgekit.cli.cmd_convert import format_result

        lines = [f"EfficientNet-Lite0 (ImageNet weights) converted to full int8, calibrated on "
                 f"{result.conversion.calibration['used']} crops of scikit-image's photos", "",
                 format_result(result.conversion), ""]
    else:
        lines = [f"model: {result.model} (a real uint8 colour classifier written by edgekit; install "
                 f"edgekit[demo] for the EfficientNet-Lite0 conversion demo)", ""]
    lines += [format_prediction(result.prediction), "", format_run(run_document(result.run)), "",
              format_bench(bench_document(result.bench)), "", "files:"]
    lines += [f"  {what:20} {where}" for what, where in result.files.items() if where]
    return "\n".join(lines)
