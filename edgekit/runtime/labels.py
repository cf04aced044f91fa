"""Label files, read the way pycoral reads them, and names for ids a label file does not cover.

Three formats, mixable line by line as in pycoral: "N label", "N: label", or just "label" (the id is
the line index, blank lines counting). A line counts as numbered when its first word is all digits.
"""

import os
import re
import warnings

from edgekit.errors import EdgekitError

# pycoral splits the id from the label on any run of colons and whitespace.
_ID_SEPARATOR = re.compile(r"[:\s]+")


class LabelWarning(UserWarning):
    """A label file that does not fit the model (issued once per file and class count)."""


def parse_labels(lines):
    """{id: label} from the lines of a label file."""
    labels = {}
    for row, line in enumerate(lines):
        text = line.strip()
        pair = _ID_SEPARATOR.split(text, maxsplit=1)
        if len(pair) == 2 and pair[0].isdigit():
            labels[int(pair[0])] = pair[1].strip()
        else:
            labels[row] = text
    return labels


def read_label_file(path):
    """pycoral's read_label_file: {id: label} from a UTF-8 text file."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: Windows editors prepend a BOM
            return parse_labels(f.read().splitlines())
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such label file") from None
    except IsADirectoryError:
        raise EdgekitError(f"{path}: is a directory, not a label file") from None
    except UnicodeDecodeError as error:
        raise EdgekitError(f"{path}: not a UTF-8 text label file ({error.reason} at byte {error.start}): "
                           "save it as UTF-8 text, one label per line") from None


def label_name(labels, class_id):
    """The label of `class_id`, or "class N" when the file has none, so no result goes unnamed."""
    label = (labels or {}).get(int(class_id))
    return label if label else f"class {int(class_id)}"


def missing_labels_message(labels, num_classes, path="labels"):
    """A one-line complaint when the labels do not cover ids 0..num_classes-1, else None."""
    missing = [i for i in range(int(num_classes)) if i not in labels]
    if not missing:
        return None
    shown = ", ".join(str(i) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return (f"{path}: {len(labels)} labels for a model with {num_classes} classes; ids without a label "
            f"({len(missing)}: {shown}) are shown as 'class N'")


def check_labels(labels, num_classes, path="labels"):
    """Warn (LabelWarning, once per message) when labels are short for the model; True when they are."""
    message = missing_labels_message(labels, num_classes, path)
    if message:
        warnings.warn(message, LabelWarning, stacklevel=2)
    return message is not None
