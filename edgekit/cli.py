"""The `edgekit` command: thin click commands over the library.

Every command takes --json. Errors a user can fix (EdgekitError) become one line on stderr and a
non-zero exit; --debug shows the traceback instead.
"""

import functools
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug):
    """Take vision models to the Google Coral Edge TPU, and run them there or on the CPU.

    \b
    Example:
      edgekit run model_edgetpu.tflite cat.jpg --labels labels.txt
    """


def main():
    cli(prog_name="edgekit")


if __name__ == "__main__":
    main()
