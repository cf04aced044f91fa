"""What the edgekit commands share: one-line errors, the --json output, and the options several take.

Option factories import the library only when called, so loading one command never loads another's code.
"""

import functools
import json
import sys

import click

from edgekit.errors import EdgekitError


def emit_json(document):
    """Print `document` as indented JSON (numpy arrays as lists, namedtuples as objects)."""
    click.echo(json.dumps(document, indent=2, default=_json_default))


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "_asdict"):
        return value._asdict()
    return str(value)


def print_output(value, as_json, to_text, to_json=None):
    """What a command prints: `to_json(value)` (or `value` itself) as JSON with --json, else `to_text(value)`."""
    if as_json:
        emit_json(to_json(value) if to_json else value)
    else:
        click.echo(to_text(value))


def error(message):
    """`edgekit: error: MESSAGE` on stderr: how every command reports a problem the user can fix."""
    click.echo(f"edgekit: error: {message}", err=True)


def warning(message):
    click.echo(f"edgekit: warning: {message}", err=True)


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
            error(e)
            sys.exit(e.exit_code)

    return wrapper


def json_option(help="Print one JSON document."):
    return click.option("--json", "as_json", is_flag=True, help=help)


def device_option():
    from edgekit.runtime.edgetpu import DEVICES

    return click.option("--device", default="auto", show_default=True,
                        help=f"{DEVICES} (auto: an Edge TPU if one works, else the CPU); for a model in "
                             "segments, one per segment: usb:0,usb:1 or pci:0,pci:1")


def labels_option(help="Label file (pycoral formats)."):
    return click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help=help)


def task_option(help="Override the task detected from the model.", tasks=None):
    from edgekit.runtime.tasks import TASKS

    return click.option("--task", type=click.Choice(tasks or TASKS), help=help)


def resize_option(help):
    from edgekit.runtime.images import RESIZE_METHODS

    return click.option("--resize", type=click.Choice(RESIZE_METHODS), help=help)


def threads_option(help="CPU threads [all cores].", minimum=None):
    return click.option("--threads", type=int if minimum is None else click.IntRange(minimum), default=None,
                        help=help)


def threshold_option():
    from edgekit.runtime.tasks import DEFAULT_THRESHOLD, DETECTION

    return click.option("--threshold", type=float, default=None,
                        help=f"Lowest score to report [classification: above 0, detection "
                             f"{DEFAULT_THRESHOLD[DETECTION]}].")
