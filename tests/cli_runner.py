"""The edgekit command line run in this process, for tests."""

from click.testing import CliRunner

from edgekit.cli import cli


def edgekit(*args):
    """`edgekit ARGS...`: the click result; an exception the CLI did not turn into an exit is raised."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result
