"""`edgekit models`: the model zoo, its input sizes, parameters and where pretrained weights come from."""

import click

from edgekit.cli.common import handles_errors, json_option, print_output
from edgekit.models.catalog import zoo_listing


@click.command("models")
@click.option("--count", is_flag=True, help="Build every model and count its parameters (imports TensorFlow, "
                                            "about a minute).")
@json_option()
@handles_errors
def models_command(count, as_json):
    """List the model zoo: name, task, input size, parameters, pretrained weights.

    \b
    Example:
      edgekit models --json
    """
    listing = zoo_listing(count=count)
    print_output(listing, as_json, format_zoo, zoo_document)


def zoo_document(listing):
    """The document `edgekit models --json` prints, from a `models.catalog.ZooListing`: the parameter counts
    only when they were counted."""
    rows = []
    for model in listing.models:
        row = {"name": model.name, "task": model.task, "input_size": list(model.input_size),
               "num_classes": model.num_classes, "parameters_published": model.parameters_published,
               "weights": [w._asdict() for w in model.weights], "description": model.description}
        if model.parameters is not None:
            row.update(parameters=model.parameters, parameters_trainable=model.parameters_trainable)
        rows.append(row)
    return {"models": rows, "families": [f._asdict() for f in listing.families]}


def _millions(count):
    return f"{count / 1e6:.2f}M" if count else "-"


def format_zoo(listing):
    """The zoo as a table of its models, then a line per family."""
    counted = any(model.parameters is not None for model in listing.models)
    header = ["name", "task", "input", "params" + (" (counted/published)" if counted else " (published)"), "weights"]
    table = []
    for model in listing.models:
        params = _millions(model.parameters_published)
        if counted:
            params = f"{_millions(model.parameters)} / {params}"
        weights = "; ".join(f"{w.name}: {w.source}" + ("" if w.installed is not False else " [not installed]")
                            for w in model.weights) or "none (random init; weights=PATH for your own)"
        table.append([model.name, model.task, "x".join(map(str, model.input_size)), params, weights])
    widths = [max(len(r[i]) for r in table + [header]) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(r[:-1], widths)) + "  " + r[-1]
             for r in [header] + table]
    for family in listing.families:
        lines.append(f"{family.name}: {family.description} (e.g. create(\"{family.name}\", phi=1.5))")
    return "\n".join(lines)
