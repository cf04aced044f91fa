"""The `edgekit` command: thin click commands over the library.

Every command takes --json. Errors a user can fix (EdgekitError) become one line on stderr and a
non-zero exit; --debug shows the traceback instead.
"""

import functools
import importlib
import json
import sys

import click

from edgekit import __version__
from edgekit.errors import EdgekitError


def _emit_json(document):
    click.echo(json.dumps(document, indent=2, default=_json_default))


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "_asdict"):
        return value._asdict()
    return str(value)


def handles_errors(command):
    """Turn EdgekitError into `edgekit: error: <message>` and its exit code, unless --debug."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        try:
            return command(*args, **kwargs)
        except EdgekitError as e:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"edgekit: error: {e}", err=True)
            sys.exit(e.exit_code)

    return wrapper


class LazyGroup(click.Group):
    """Commands of other subpackages are imported only when used, so `edgekit run` starts fast and never
    pays for the compiler, the converter (TensorFlow) or the camera code."""

    lazy = {}  # command name -> "module:attribute"

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            module, attribute = self.lazy[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug):
    """Take vision models to the Google Coral Edge TPU, and run them there or on the CPU.

    \b
    Example:
      edgekit run model_edgetpu.tflite cat.jpg --labels labels.txt
    """


DEVICE_HELP = "cpu, auto, edgetpu, usb, usb:N, pci, pci:N or :N (auto: an Edge TPU if one works, else the CPU)"


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="Label file (pycoral formats).")
@click.option("--top-k", default=5, show_default=True, help="Classes to report per image.")
@click.option("--threshold", type=float, default=None,
              help="Lowest score to report [classification: above 0, detection 0.4].")
@click.option("--task", type=click.Choice(["classification", "detection", "segmentation"]),
              help="Override the task detected from the model.")
@click.option("--resize", type=click.Choice(["bilinear", "tflite-bilinear", "nearest", "lanczos"]),
              help="Resize method [bilinear].")
@click.option("--threads", type=int, default=None, help="CPU threads [all cores].")
@click.option("--save", "save_to", type=click.Path(), help="Write the annotated image (a file for one image, "
                                                            "else a folder).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def run(model, images, device, labels_path, top_k, threshold, task, resize, threads, save_to, as_json):
    """Classify, detect or segment IMAGES with MODEL on the Edge TPU or the CPU.

    \b
    Example:
      edgekit run mobilenet_v2_1.0_224_quant_edgetpu.tflite cat.jpg --labels imagenet_labels.txt
    """
    from edgekit.runtime import commands

    document = commands.run_images(model, images, device=device, labels_path=labels_path, top_k=top_k,
                                   threshold=threshold, task=task, resize=resize, threads=threads,
                                   save_to=save_to)
    if as_json:
        _emit_json(document)
    else:
        click.echo(commands.format_run(document))


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("-n", "--iterations", default=100, show_default=True, help="Timed runs.")
@click.option("--warmup", default=10, show_default=True, help="Untimed runs first.")
@click.option("--threads", type=int, default=None, help="CPU threads [all cores].")
@click.option("--image", type=click.Path(dir_okay=False), help="Image for the pipeline timing "
                                                                 "[a generated picture].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def bench(model, device, iterations, warmup, threads, image, as_json):
    """Latency and FPS of MODEL: invoke alone, and the whole pipeline.

    \b
    Example:
      edgekit bench mobilenet_v2_1.0_224_quant_edgetpu.tflite -n 200 --device usb
    """
    from edgekit.runtime import commands

    document = commands.bench_model(model, device=device, iterations=iterations, warmup=warmup,
                                    threads=threads, image=image)
    if as_json:
        _emit_json(document)
    else:
        click.echo(commands.format_bench(document))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def doctor(as_json):
    """What this machine has for running models: backend, libedgetpu, Edge TPUs, and what to do next.

    \b
    Example:
      edgekit doctor --json
    """
    from edgekit.runtime import commands

    document = commands.doctor()
    if as_json:
        _emit_json(document)
    else:
        click.echo(commands.format_doctor(document))


@cli.command()
@click.option("--out", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the models, photos, report and annotated results.")
@click.option("-n", "--iterations", default=50, show_default=True, help="Timed runs for the benchmark.")
@click.option("--runtime-only", is_flag=True,
              help="The runtime demo (a built-in colour classifier) even when the converter is installed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def demo(out, iterations, runtime_only, as_json):
    """What `make demo` runs: convert EfficientNet-Lite0 (ImageNet weights) to int8 on scikit-image's
    photos, check / compile it for the Edge TPU, classify photos with it and benchmark it.

    Without the converter (`pip install "edgekit[demo]"`) it takes a built-in colour classifier through
    check, run and bench instead.

    \b
    Example:
      edgekit demo --out demo-out
    """
    from edgekit.demo import format_demo, run_demo

    summary = run_demo(out, iterations, full=False if runtime_only else None)
    if as_json:
        _emit_json({k: v for k, v in summary.items() if k != "check_table"})
    else:
        click.echo(format_demo(summary))


# Commands that live with their subpackage, loaded on first use (see LazyGroup).
LazyGroup.lazy.update({
    "check": "edgekit.compiler.commands:check",
    "inspect": "edgekit.compiler.commands:inspect_cmd",
    "compile": "edgekit.compiler.commands:compile_cmd",
    "convert": "edgekit.converters.commands:convert",
})

# edgekit camera (OpenCV) lives with the camera code, loaded on first use like the commands above.
LazyGroup.lazy["camera"] = "edgekit.runtime.camera.commands:camera"


# edgekit eval / ensemble live with the evaluation code, loaded on first use like the commands above.
LazyGroup.lazy.update({"eval": "edgekit.evaluation.commands:eval_cmd",
                       "ensemble": "edgekit.evaluation.commands:ensemble_cmd"})

# edgekit models lists the zoo (edgekit/models); loaded on first use like the commands above.
LazyGroup.lazy["models"] = "edgekit.models.commands:models"


def main():
    cli(prog_name="edgekit")


if __name__ == "__main__":
    main()
