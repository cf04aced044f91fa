"""The edgekit command line run in this process, for tests."""

import json

from click.testing import CliRunner

from edgekit.cli import cli

# Library keyword -> `edgekit run` flag, where the two differ by more than underscores.
_RUN_FLAGS = {"labels_path": "--labels", "save_to": "--save"}


def edgekit(*args):
    """`edgekit ARGS...`: the click result; an exception the CLI did not turn into an exit is raised."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run_json(model, images, **options):
    """`edgekit run MODEL IMAGES... --json` with `options` as flags (top_k=1 is --top-k 1): the document
    it prints, parsed. Fails the test with the CLI's own output when the command fails."""
    flags = []
    for name, value in options.items():
        flags += [_RUN_FLAGS.get(name, "--" + name.replace("_", "-")), value]
    result = edgekit("run", model, *images, *flags, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
