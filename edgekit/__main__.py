"""`python -m edgekit`: the same command as the `edgekit` script, and the one module outside edgekit/cli/ that
imports the CLI."""

from edgekit.cli import main

main()
