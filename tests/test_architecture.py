"""Which part of edgekit may import which: the rules of docs/architecture.md, checked on every module.

Every module under edgekit/ is parsed with `ast`, and every import in it is checked against RULES: module-level
imports and those inside functions, methods and classes; `import x` and `from x import y`; relative imports
resolved against the module's package; and `importlib.import_module(...)` / `__import__(...)` called with a
string literal or a module-level string constant. A name computed at run time cannot be read here; the
subprocess tests that run the runtime and assert `'tensorflow' not in sys.modules` cover those.

Names in RULES are dotted module names: a plain name stands for that module and everything inside it
(`edgekit.runtime` covers `edgekit.runtime.images`), a name with `*` is a glob (`tensorflow_*`, and
`edgekit.*`, every module inside edgekit but not the package's own `__init__`). docs/architecture.md shows
the same table: `test_architecture_doc_shows_the_rules` fails, printing the table, when the two differ.
"""

import ast
import functools
import importlib.util
import json
import os
import subprocess
import sys
from collections import namedtuple
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"

# name: what the doc and failures call it; modules: the importers it applies to, minus those in `outside`;
# forbidden: what they may not import, minus `allowed`; exceptions: single imports allowed by name.
Rule = namedtuple("Rule", "name modules outside forbidden allowed exceptions why")
Allowance = namedtuple("Allowance", "module imports why")

RUNTIME_HALF = ("edgekit.runtime", "edgekit.compiler", "edgekit.tflite", "edgekit.evaluation", "edgekit.learn",
                "edgekit.errors", "edgekit.files", "edgekit.image_folders", "edgekit.progress")
TENSORFLOW = ("tensorflow", "tensorflow_*", "keras", "keras_*", "tf_keras")
TENSORFLOW_FOLDERS = ("edgekit.models", "edgekit.calibration", "edgekit.converters", "edgekit.training")

RULES = (
    Rule(name="runtime without TensorFlow", modules=RUNTIME_HALF, outside=(),
         forbidden=TENSORFLOW + TENSORFLOW_FOLDERS, allowed=(),
         exceptions=(Allowance("edgekit.runtime.backends", "tensorflow",
                               "tf.lite, the interpreter of last resort: loaded only when none of pycoral, "
                               "ai-edge-litert and tflite-runtime imports, or with EDGEKIT_BACKEND=tensorflow "
                               "(on Windows, PyPI may have no other interpreter for the Python in use)"),),
         why="`pip install edgekit` runs, checks, inspects, compiles, evaluates and teaches models without TensorFlow, "
             "a large install that is slow to import and has no wheels for 32-bit ARM boards"),
    Rule(name="the CLI on top", modules=("edgekit",), outside=("edgekit.cli",), forbidden=("edgekit.cli",),
         allowed=(),
         exceptions=(Allowance("edgekit.__main__", "edgekit.cli", "`python -m edgekit`, the entry point"),),
         why="commands parse options and build their text and JSON in `edgekit/cli/`: no library module depends "
             "on how a command parses or prints, and using edgekit from Python never loads the CLI"),
    Rule(name="runtime below the compiler", modules=("edgekit.runtime",), outside=(),
         forbidden=("edgekit.compiler",), allowed=(), exceptions=(),
         why="the build side (converters, compiler) may run what it built through the runtime, never the other "
             "way round: a board that only runs models needs neither the compiler's rules nor its log parser"),
    Rule(name="learning above the runtime", modules=("edgekit.runtime",), outside=(), forbidden=("edgekit.learn",),
         allowed=(), exceptions=(),
         why="on-device learning runs its extractors through the runtime and plugs its teach page into the camera's "
             "server through the camera's own hooks: a board that only runs models loads none of it"),
    Rule(name="tflite stands alone", modules=("edgekit.tflite",), outside=(), forbidden=("edgekit.*",),
         allowed=("edgekit.tflite", "edgekit.errors", "edgekit.files"), exceptions=(),
         why="the one .tflite reader, model builder and metadata format, which every other folder uses: "
             "whatever it imported would import it back. `edgekit` itself (for `__version__`) is allowed"),
)

Import = namedtuple("Import", "line name")
Violation = namedtuple("Violation", "path line module imported rule")
DYNAMIC_IMPORTS = ("import_module", "__import__")


def matches(name, patterns):
    """Whether the dotted `name` is one of `patterns` or inside one (see the module docstring)."""
    return any(fnmatchcase(name, pattern) or ("*" not in pattern and name.startswith(pattern + "."))
               for pattern in patterns)


def absolute(name, level, package):
    """`name` imported with `level` leading dots from inside `package`, as an absolute module name."""
    if not level:
        return name
    parts = package.split(".")
    base = parts[:len(parts) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def string_constants(tree):
    """Module-level `NAME = "text"` assignments, so that import_module(NAME) is read like a literal."""
    constants = {}
    for statement in tree.body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and isinstance(statement.value, ast.Constant):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and isinstance(statement.value.value, str):
                constants[targets[0].id] = statement.value.value
    return constants


def dynamic_import_name(call, constants):
    """The module that an `importlib.import_module(...)` or `__import__(...)` call names, or None."""
    function = call.func
    called = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
    if called not in DYNAMIC_IMPORTS or not call.args:
        return None
    argument = call.args[0]
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value
    return constants.get(argument.id) if isinstance(argument, ast.Name) else None


def imports_in(source, module, is_package=False, known_modules=frozenset()):
    """Every import in `source` (the text of `module`) as (line, absolute module name), in line order.

    `from package import name` counts as importing `package.name` when that is one of `known_modules`, else
    as importing `package` (the name is then an attribute, such as `__version__`)."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    constants = string_constants(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node.module or "", node.level, package)
            for alias in node.names:
                member = f"{base}.{alias.name}"
                found.append(Import(node.lineno, member if member in known_modules else base))
        elif isinstance(node, ast.Call):
            name = dynamic_import_name(node, constants)
            if name:
                stripped = name.lstrip(".")
                found.append(Import(node.lineno, absolute(stripped, len(name) - len(stripped), package)))
    return sorted(found)


def allowed_by_name(rule, module, imported):
    return any(module == allowance.module and imported == allowance.imports for allowance in rule.exceptions)


def violations(path, module, source, is_package=False, known_modules=frozenset(), rules=RULES):
    """The imports of one module that break a rule, each with the file and line to fix."""
    imports = imports_in(source, module, is_package, known_modules)
    found = []
    for rule in rules:
        if not matches(module, rule.modules) or matches(module, rule.outside):
            continue
        found += [Violation(path, line, module, name, rule.name) for line, name in imports
                  if matches(name, rule.forbidden) and not matches(name, rule.allowed)
                  and not allowed_by_name(rule, module, name)]
    return found


def describe(violation):
    return f"{violation.path}:{violation.line}: {violation.module} imports {violation.imported}"


def module_of(path):
    """(dotted module name, whether it is a package) of a .py file under the repository root."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def rule_names():
    """Every plain module name the rules mention, so that `from edgekit import training` resolves to the
    module even before that folder exists."""
    names = set()
    for rule in RULES:
        patterns = rule.modules + rule.outside + rule.forbidden + rule.allowed
        names.update(pattern for pattern in patterns if "*" not in pattern)
    return names


@functools.lru_cache(maxsize=None)
def edgekit_modules():
    """(path relative to the repository, module name, is package, source) of every module under edgekit/."""
    found = []
    for path in sorted((ROOT / "edgekit").rglob("*.py")):
        module, is_package = module_of(path)
        found.append((path.relative_to(ROOT).as_posix(), module, is_package, path.read_text(encoding="utf-8")))
    return tuple(found)


@functools.lru_cache(maxsize=None)
def tree_violations():
    known = frozenset(module for _, module, _, _ in edgekit_modules()) | rule_names()
    return tuple(violation for path, module, is_package, source in edgekit_modules()
                 for violation in violations(path, module, source, is_package, known))


def rules_table():
    """RULES as the Markdown table that docs/architecture.md shows."""
    def names(patterns):
        return ", ".join(f"`{pattern}`" for pattern in patterns)

    rows = ["| rule | modules | may not import | allowed by name | why |", "|---|---|---|---|---|"]
    for rule in RULES:
        modules = names(rule.modules) + (f" (not {names(rule.outside)})" if rule.outside else "")
        forbidden = names(rule.forbidden) + (f", other than {names(rule.allowed)}" if rule.allowed else "")
        exceptions = "; ".join(f"`{allowance.module}` imports `{allowance.imports}`: {allowance.why}"
                               for allowance in rule.exceptions) or "-"
        rows.append(f"| {rule.name} | {modules} | {forbidden} | {exceptions} | {rule.why} |")
    return "\n".join(rows) + "\n"


# --- the tree keeps the rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_edgekit_keeps_the_rule(rule):
    broken = [describe(v) for v in tree_violations() if v.rule == rule.name]
    assert not broken, f"rule '{rule.name}' ({rule.why}) is broken by:\n" + "\n".join(broken)


def test_every_module_is_checked():
    modules = {module for _, module, _, _ in edgekit_modules()}
    assert {"edgekit", "edgekit.__main__", "edgekit.cli", "edgekit.runtime.backends",
            "edgekit.tflite.metadata"} <= modules


def test_each_allowance_names_a_real_import():
    """An import allowed by name must still happen, else the allowance is stale and should go."""
    sources = {module: (path, is_package, source) for path, module, is_package, source in edgekit_modules()}
    known = frozenset(sources) | rule_names()
    for rule in RULES:
        for allowance in rule.exceptions:
            path, is_package, source = sources[allowance.module]
            imported = {name for _, name in imports_in(source, allowance.module, is_package, known)}
            assert allowance.imports in imported, f"{path} no longer imports {allowance.imports}"


def test_architecture_doc_shows_the_rules():
    assert rules_table() in ARCHITECTURE_DOC.read_text(encoding="utf-8"), (
        "docs/architecture.md's rule table differs from RULES in tests/test_architecture.py; the table is:\n"
        + rules_table())


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_tensorflow_runs_models_only_as_the_last_resort(coral):
    """The one allowed TensorFlow import at work: with no lighter interpreter, tf.lite runs the model."""
    script = ("import sys\n"
              "for name in ('pycoral', 'ai_edge_litert', 'tflite_runtime'):\n"
              "    sys.modules[name] = None  # as if not installed: importing it raises ImportError\n"
              "from edgekit.cli import main\n"
              "sys.argv = ['edgekit', 'run', sys.argv[1], sys.argv[2], '--device', 'cpu', '--json']\n"
              "main()\n")
    environment = {name: value for name, value in os.environ.items() if name != "EDGEKIT_BACKEND"}
    result = subprocess.run([sys.executable, "-c", script, str(coral("mobilenet_v1_0.25_128_quant.tflite")),
                             str(coral("cat.bmp"))], capture_output=True, text=True, cwd=ROOT, env=environment)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["backend"].startswith("tensorflow") and document["results"][0]["classes"]


# --- the checker catches a broken rule, naming the file and line ----------------------------------------

KNOWN = frozenset({"edgekit.cli", "edgekit.converters", "edgekit.converters.quantize", "edgekit.runtime.images"}
                  | rule_names())


def broken(source, path):
    module, is_package = module_of(ROOT / path)
    return [f"{describe(v)} ({v.rule})" for v in violations(path, module, source, is_package, KNOWN)]


def test_catches_an_import_inside_a_function():
    source = "import os\n\n\ndef load():\n    import tensorflow as tf\n    return tf.lite\n"
    assert broken(source, "edgekit/runtime/loader.py") == [
        "edgekit/runtime/loader.py:5: edgekit.runtime.loader imports tensorflow (runtime without TensorFlow)"]


def test_catches_import_module_inside_a_method():
    source = ("import importlib\n\n\nclass Predictor:\n    def model(self):\n"
              "        return importlib.import_module(\"keras\").Model\n")
    assert broken(source, "edgekit/compiler/predictor.py") == [
        "edgekit/compiler/predictor.py:6: edgekit.compiler.predictor imports keras (runtime without TensorFlow)"]


def test_catches_dunder_import_and_import_module_of_a_constant():
    source = ("from importlib import import_module\n\nLEGACY = \"tf_keras\"\n\n\ndef legacy():\n"
              "    return import_module(LEGACY)\n\n\ndef hub():\n    return __import__(\"tensorflow_hub\")\n")
    assert broken(source, "edgekit/evaluation/legacy.py") == [
        "edgekit/evaluation/legacy.py:7: edgekit.evaluation.legacy imports tf_keras (runtime without TensorFlow)",
        "edgekit/evaluation/legacy.py:11: edgekit.evaluation.legacy imports tensorflow_hub "
        "(runtime without TensorFlow)"]


def test_catches_a_relative_import_of_a_tensorflow_folder():
    source = "\"\"\"Docstring.\"\"\"\n\nfrom ..converters import quantize\n"
    assert broken(source, "edgekit/evaluation/scores.py") == [
        "edgekit/evaluation/scores.py:3: edgekit.evaluation.scores imports edgekit.converters.quantize "
        "(runtime without TensorFlow)"]
    # A folder the rules name before it exists is still recognised when imported from its parent package.
    assert broken("from edgekit import training\n", "edgekit/runtime/fit.py") == [
        "edgekit/runtime/fit.py:1: edgekit.runtime.fit imports edgekit.training (runtime without TensorFlow)"]


def test_catches_a_library_module_importing_the_cli():
    source = "from edgekit.cli import main\n"
    assert broken(source, "edgekit/image_folders.py") == [
        "edgekit/image_folders.py:1: edgekit.image_folders imports edgekit.cli (the CLI on top)"]
    assert broken("from .. import cli\n", "edgekit/models/zoo.py") == [
        "edgekit/models/zoo.py:1: edgekit.models.zoo imports edgekit.cli (the CLI on top)"]


def test_catches_the_runtime_importing_the_compiler_and_tflite_importing_the_runtime():
    assert broken("def f():\n    from edgekit.compiler import check\n", "edgekit/runtime/runs.py") == [
        "edgekit/runtime/runs.py:2: edgekit.runtime.runs imports edgekit.compiler (runtime below the compiler)"]
    assert broken("from edgekit.runtime import images\n", "edgekit/tflite/pictures.py") == [
        "edgekit/tflite/pictures.py:1: edgekit.tflite.pictures imports edgekit.runtime.images "
        "(tflite stands alone)"]


def test_the_tensorflow_allowance_holds_for_backends_alone():
    source = ("import importlib\n\nMODULE = \"tensorflow\"\n\n\ndef load():\n"
              "    return importlib.import_module(MODULE)\n")
    assert broken(source, "edgekit/runtime/backends.py") == []
    assert broken(source, "edgekit/runtime/interpreter.py") == [
        "edgekit/runtime/interpreter.py:7: edgekit.runtime.interpreter imports tensorflow "
        "(runtime without TensorFlow)"]
    assert broken("import keras\n", "edgekit/runtime/backends.py") == [
        "edgekit/runtime/backends.py:1: edgekit.runtime.backends imports keras (runtime without TensorFlow)"]


def test_allows_what_the_rules_allow():
    assert broken("from edgekit import __version__\nfrom edgekit.files import write_atomic\n"
                  "from edgekit.errors import ModelFormatError\nfrom . import schema\n",
                  "edgekit/tflite/notes.py") == []
    assert broken("from edgekit.cli import main\n", "edgekit/__main__.py") == []
    assert broken("from edgekit.cli.common import emit_json\n", "edgekit/cli/cmd_new.py") == []
    assert broken("from edgekit.runtime.interpreter import open_model\n", "edgekit/compiler/build.py") == []
    assert broken("import numpy\nprint('import tensorflow')\n", "edgekit/runtime/quiet.py") == []
