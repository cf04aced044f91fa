"""`edgekit eval` and `edgekit ensemble`: thin click commands over evaluation.evaluate and
runtime.ensemble."""

import click

from edgekit.cli import DEVICE_HELP, _emit_json, handles_errors
from edgekit.errors import EdgekitError


@click.command("eval")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(),
              help="Class folders (classification), COCO .json / YOLO / VOC folder (detection), "
                   "images/ + masks/ (segmentation).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="Label file [the model's own].")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="Model to measure top-1 agreement and mean KL against (no labels needed).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Worker processes.")
@click.option("--threads", type=click.IntRange(1), default=None, help="Threads per worker [cores / workers].")
@click.option("--task", type=click.Choice(["classification", "detection", "segmentation"]),
              help="Override the task detected from the model.")
@click.option("--resize", type=click.Choice(["bilinear", "tflite-bilinear", "nearest", "lanczos"]),
              help="Resize method [the model's, else the task's default].")
@click.option("--plot", "plot_to", type=click.Path(dir_okay=False), help="Draw the figures into OUT.png.")
@click.option("--no-progress", is_flag=True, help="No progress bar (it is drawn only on a terminal anyway).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def eval_cmd(models, data, labels_path, reference, device, workers, threads, task, resize, plot_to, no_progress,
             as_json):
    """Accuracy of MODELS on your own data, side by side (e.g. float, int8 and Edge TPU twin).

    \b
    Example:
      edgekit eval a.tflite a_edgetpu.tflite --data photos/ --labels imagenet_labels.txt
      edgekit eval small.tflite --data photos/ --reference big.tflite --workers 2 --json
      edgekit eval detector.tflite --data coco/instances_val.json --plot eval.png
    """
    from edgekit.evaluation import evaluate, report

    if plot_to and not plot_to.lower().endswith(".png"):
        raise EdgekitError(f"{plot_to}: --plot writes a PNG image; give a file name ending in .png")
    document = evaluate.evaluate(models, data, labels_path=labels_path, reference=reference, device=device,
                                 workers=workers, threads=threads, task=task, resize=resize,
                                 progress=False if no_progress else None)
    if plot_to:
        document["plot"] = report.draw_plot(document, plot_to)
    if as_json:
        _emit_json(document)
    else:
        click.echo(report.format_table(document))


@click.command("ensemble")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The ensemble file to write (.json).")
@click.option("--weights", help="One weight per model, comma-separated [equal].")
@click.option("--combine", type=click.Choice(["mean", "logit-mean"]), default="mean", show_default=True,
              help="Average probabilities, or log-probabilities (logits) then softmax.")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="Label file the members share.")
@click.option("--no-compile", is_flag=True, help="Do not co-compile the members even if edgetpu_compiler is here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def ensemble_cmd(models, out, weights, combine, labels_path, no_compile, as_json):
    """Combine classifiers MODELS into ENSEMBLE.json, which run, bench and eval take like a model.

    Each member keeps its own input size and preprocessing. With edgetpu_compiler present the members are
    co-compiled, so on the Edge TPU they share the on-chip parameter cache.

    \b
    Example:
      edgekit ensemble mobilenet_v1_0.25_128_quant.tflite mobilenet_v1_0.5_160_quant.tflite \\
          --weights 1,2 --labels imagenet_labels.txt --out ens/ensemble.json
    """
    from edgekit.runtime import ensemble

    if not out.lower().endswith(".json"):
        raise EdgekitError(f"{out}: an ensemble file is JSON; give a name ending in .json")
    parsed = None
    if weights:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError:
            raise EdgekitError(f"--weights {weights}: give numbers separated by commas, e.g. 1,2") from None
    document = ensemble.write_ensemble(models, out, parsed, combine, labels_path, not no_compile)
    if as_json:
        _emit_json(dict(document, out=out))
        return
    params = document["parameters"]
    click.echo(f"wrote {out}: {len(document['members'])} members, combine {combine}, weights "
               + ", ".join(str(m["weight"]) for m in document["members"]))
    for m in params["members"]:
        click.echo(f"  {m['model']}: {m['parameter_bytes'] / 2**20:.2f} MiB of parameters")
    click.echo(f"  together {params['total_bytes'] / 2**20:.2f} MiB against the ~{params['cache_bytes'] / 2**20:.1f}"
               f" MiB on-chip cache: " + ("fits" if params["fits_cache"] else "does not fit, some will stream"))
    click.echo(f"  {document['compile']}")
