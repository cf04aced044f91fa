"""`edgekit models`: the model zoo, its input sizes, parameters and where pretrained weights come from."""

import click

from edgekit.cli.options import emit_json, handles_errors, json_option
from edgekit.models.catalog import zoo_document


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
    document = zoo_document(count=count)
    if as_json:
        emit_json(document)
    else:
        click.echo(format_zoo(document))


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
