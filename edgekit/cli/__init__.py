"""The `edgekit` command: the one layer that parses options and prints; the library never imports it.

Each command lives in its own module here (`cmd_<name>.py`): it parses, calls one library function that
returns data, and formats that data as text or JSON. `COMMANDS` is the one table of them; a command's
module is imported only when that command runs, so `edgekit run` never pays for the compiler, the
converter (TensorFlow) or the camera code.
"""

import importlib

import click

from edgekit import __version__

# command name -> "module:function" of its click command.
COMMANDS = {
    "run": "edgekit.cli.cmd_run:run_command",
    "bench": "edgekit.cli.cmd_bench:bench_command",
    "doctor": "edgekit.cli.cmd_doctor:doctor_command",
    "check": "edgekit.cli.cmd_check:check_command",
    "inspect": "edgekit.cli.cmd_inspect:inspect_command",
    "compile": "edgekit.cli.cmd_compile:compile_command",
    "segment": "edgekit.cli.cmd_segment:segment_command",
    "convert": "edgekit.cli.cmd_convert:convert_command",
    "models": "edgekit.cli.cmd_models:models_command",
    "eval": "edgekit.cli.cmd_eval:eval_command",
    "ensemble": "edgekit.cli.cmd_ensemble:ensemble_command",
    "camera": "edgekit.cli.cmd_camera:camera_command",
    "demo": "edgekit.cli.cmd_demo:demo_command",
    "train": "edgekit.cli.cmd_train:train_command",
    "learn": "edgekit.cli.cmd_learn:learn_command",
}


def load_command(name):
    """The click command `name` of COMMANDS, importing its module."""
    module, attribute = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


class LazyGroup(click.Group):
    """A group whose commands come from COMMANDS, each loaded on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        if name not in self.commands:
            self.add_command(load_command(name), name)
        return self.commands[name]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
