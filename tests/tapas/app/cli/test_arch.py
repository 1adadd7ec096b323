"""``tapas arch show`` end to end, as a user runs it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tapas.app.cli.main import app
from tests.tapas.core.arch.test_ir import RESNETISH

runner = CliRunner()
CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def test_help_lists_groups() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "arch" in r.output and "bench" in r.output


def test_show_cell_json() -> None:
    r = runner.invoke(app, ["arch", "show", CELL, "--json", "--classes", "120",
                            "--input-shape", "3x16x16"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert {"id", "params", "flops", "layers"} <= set(obj)
    assert obj["layers"][-1]["out_shape"] == [120]


def test_one_input_shape_syntax() -> None:
    """``--input-shape 3x16x16`` on every command; ``--input 3,16,16`` (the older spelling
    of ``arch show`` and ``predict``) still works, with a deprecation warning."""
    new = runner.invoke(app, ["arch", "show", CELL, "--json", "--input-shape", "3x16x16"])
    old = runner.invoke(app, ["arch", "show", CELL, "--json", "--input", "3,16,16"])
    assert new.exit_code == old.exit_code == 0, old.output
    assert json.loads(new.stdout)["id"] == json.loads(old.stdout)["id"]
    assert "--input is deprecated; use --input-shape" in old.stderr
    assert "deprecated" not in new.stderr
    for argv, message in (
            (["--input-shape", "3x16"], "--input-shape must be C x H x W like 3x32x32, got '3x16'"),
            (["--input", "3;16;16"], "--input must be C x H x W like 3x32x32, got '3;16;16'"),
            (["--input-shape", "0x16x16"], "--input-shape must be three positive sizes"),
            (["--input-shape", "3x16x16", "--input", "3,16,16"], "give --input-shape only")):
        r = runner.invoke(app, ["arch", "show", CELL, *argv])
        assert r.exit_code == 1 and message in " ".join(r.stderr.split()), r.output
        assert "Traceback" not in r.output
    for cmd in (["search", "--dcn", "0.5"], ["rank", "--archs", "x.txt", "--dcn", "0.5"]):
        r = runner.invoke(app, [*cmd, "--input-shape", "3x32"])
        assert r.exit_code == 1 and "--input-shape must be C x H x W" in r.stderr, r.output


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
    assert r.exit_code == 1 and "no known notation (tried nb201, " in r.output
    assert "nor is it a file" in r.output
    r = runner.invoke(app, ["arch", "show", "|conv~0|+|x|"])
    assert r.exit_code == 1 and "NAS-Bench-201" in r.output
