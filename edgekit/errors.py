"""The one exception type the command line turns into a single line on stderr.

Library code raises `EdgekitError` (or a subclass) for every problem a user can fix: the message says
what went wrong, which file, and what to do. Anything else is a bug and keeps its traceback.
"""


class EdgekitError(Exception):
    """A problem with the user's input or machine, explained in one line."""

    exit_code = 1


class ModelFormatError(EdgekitError):
    """The file is not a readable TFLite model."""

    exit_code = 2


class DeviceError(EdgekitError):
    """The Edge TPU (or its delegate library) cannot be used."""
