"""``tapas arch show`` end to end, as a user runs it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tapas.cli.main import app
from tests.arch.test_ir import RESNETISH

runner = CliRunner()
CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def test_help_lists_groups() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "arch" in r.output and "bench" in r.output


def test_show_cell_json() -> None:
    r = runner.invoke(app, ["arch", "show", CELL, "--json", "--classes", "120",
                            "--input", "3,16,16"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert {"id", "params", "flops", "layers"} <= set(obj)
    assert obj["layers"][-1]["out_shape"] == [120]


def test_show_file_table_and_overrides(tmp_path) -> None:
    f = tmp_path / "net.json"
    f.write_text(json.dumps(RESNETISH))
    r = runner.invoke(app, ["arch", "show", str(f)])
    assert r.exit_code == 0 and "params" in r.output and "linear" in r.output
    r = runner.invoke(app, ["arch", "show", str(f), "--classes", "5", "--json"])
    assert r.exit_code == 1 and "layer 6" in r.output and "(5,)" in r.output


def test_show_errors_are_clean(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"input": {"shape": [3, 8, 8], "num_classes": 10}, "layers": [{"op": "conv9"}]')
    r = runner.invoke(app, ["arch", "show", str(bad)])
    assert r.exit_code == 1 and "malformed JSON" in r.output and "Traceback" not in r.output
    bad.write_text('{"input": {"shape": [3, 8, 8], "num_classes": 10}, '
                   '"layers": [{"op": "conv9"}]}')
    r = runner.invoke(app, ["arch", "show", str(bad)])
    assert r.exit_code == 1 and "unknown op 'conv9'" in " ".join(r.output.split())
    r = runner.invoke(app, ["arch", "show", "no-such-file.json"])
    assert r.exit_code == 1 and "neither" in r.output
    r = runner.invoke(app, ["arch", "show", "|conv~0|+|x|"])
    assert r.exit_code == 1 and "NAS-Bench-201" in r.output
