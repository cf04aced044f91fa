"""`edgekit demo`, what `make demo` runs on a fresh machine: every step gives the right answer."""

import json
from pathlib import Path

from click.testing import CliRunner

from edgekit.cli import cli


def test_demo_builds_checks_runs_and_benchmarks(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "-n", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["check"]["tpu"] == summary["check"]["ops"] == 4 and summary["check"]["cpu"] == 0
    top = {Path(r["image"]).stem: r["classes"][0]["label"] for r in summary["run"]["results"]}
    assert top == {"sky": "blue", "grass": "green", "tomato": "red", "lemon": "yellow"}
    assert all(Path(r["saved"]).is_file() for r in summary["run"]["results"])
    assert summary["bench"]["invoke"]["n"] == 3 and summary["bench"]["pipeline"]["fps"] > 0
    assert (out / "colours.tflite").is_file() and not list(out.rglob("*.tmp"))


def test_demo_readable_output(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo"), "-n", "2"])
    assert result.exit_code == 0, result.output
    assert "Mapped to Edge TPU" in result.stdout and "yellow" in result.stdout and "fps" in result.stdout
