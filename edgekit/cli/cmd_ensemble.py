"""`edgekit ensemble`: combine classifiers into one file that run, bench and eval take like a model."""

import click

from edgekit.cli.common import emit_json, handles_errors, json_option, labels_option
from edgekit.errors import EdgekitError
from edgekit.runtime.ensemble import COMBINES


@click.command("ensemble")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The ensemble file to write (.json).")
@click.option("--weights", help="One weight per model, comma-separated [equal].")
@click.option("--combine", type=click.Choice(COMBINES), default=COMBINES[0], show_default=True,
              help="Average probabilities, or log-probabilities (logits) then softmax.")
@labels_option("Label file the members share.")
@click.option("--no-compile", is_flag=True, help="Do not co-compile the members even if edgetpu_compiler is here.")
@json_option()
@handles_errors
def ensemble_command(models, out, weights, combine, labels_path, no_compile, as_json):
    """Combine classifiers MODELS into ENSEMBLE.json, which run, bench and eval take like a model.

    Each member keeps its own input size and preprocessing. With edgetpu_compiler present the members are
    co-compiled, so on the Edge TPU they share the on-chip parameter cache.

    \b
    Example:
      edgekit ensemble mobilenet_v1_0.25_128_quant.tflite mobilenet_v1_0.5_160_quant.tflite \\
          --weights 1,2 --labels imagenet_labels.txt --out ens/ensemble.json
    """
    from edgekit.compiler.ensemble_build import ensemble_file_document, write_ensemble

    if not out.lower().endswith(".json"):
        raise EdgekitError(f"{out}: an ensemble file is JSON; give a name ending in .json")
    parsed = None
    if weights:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError:
            raise EdgekitError(f"--weights {weights}: give numbers separated by commas, e.g. 1,2") from None
    build = write_ensemble(models, out, parsed, combine, labels_path, not no_compile)
    if as_json:
        # What the file holds, and where it is.
        emit_json(dict(ensemble_file_document(build), out=out))
    else:
        click.echo(format_ensemble(build))


def format_ensemble(build):
    """What `edgekit ensemble` wrote (a `compiler.ensemble_build.EnsembleBuild`), and whether the members'
    parameters fit the on-chip cache together."""
    params = build.parameters
    lines = [f"wrote {build.path}: {len(build.members)} members, combine {build.combine}, weights "
             + ", ".join(str(m.weight) for m in build.members)]
    lines += [f"  {m.model}: {m.parameter_bytes / 2**20:.2f} MiB of parameters" for m in params.members]
    lines.append(f"  together {params.total_bytes / 2**20:.2f} MiB against the ~{params.cache_bytes / 2**20:.1f}"
                 f" MiB on-chip cache: " + ("fits" if params.fits_cache else "does not fit, some will stream"))
    lines.append(f"  {build.compile_note}")
    return "\n".join(lines)
