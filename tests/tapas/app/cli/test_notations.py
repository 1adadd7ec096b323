"""Every notation everywhere: a file mixing every notation ranks and predicts from the
CLI against the real default database, the HTTP service and the client take the same
values, and a bad value is named by its file and line (or its place in the request)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tapas.app.cli.main import app
from tapas.app.client import Client
from tapas.core.arch import DARTS_V2, from_nb201
from tapas.core.errors import InvalidArchitecture
from tapas.core.spaces import SPACES, parse_archs
from tests.tapas.core.arch.test_darts_nb101 import NB101_README
from tests.tapas.live_server import TOKEN, live_server, service_env  # noqa: F401

runner = CliRunner()
SHAPE = (3, 32, 32)
CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "skip_connect~2|")


def mixed_lines() -> list[str]:
    """One line in each notation the docs list, and each registered space's genotype named
    by its prefix (a space registered later is in the file too)."""
    lines = [CELL, DARTS_V2, json.dumps({"genotype": DARTS_V2, "C": 16, "layers": 8}),
             json.dumps(NB101_README), json.dumps(from_nb201(CELL, 10, 32).to_dict())]
    for name, space in SPACES.items():
        if space.fits(SHAPE):
            lines.append(f"{name}:{space.format(space.sample(random.Random(5)))}")
    return lines


def values(lines: list[str]) -> list[Any]:
    return [json.loads(x) if x.startswith("{") else x for x in lines]


@pytest.fixture()
def mixed(tmp_path: Path) -> tuple[Path, list[str]]:
    lines = mixed_lines()
    path = tmp_path / "mixed.txt"
    path.write_text("# every notation\n\n" + "\n".join(lines) + "\n")
    return path, lines


def test_rank_and_predict_read_every_notation(mixed: tuple[Path, list[str]],
                                              tapas_home: Path, tmp_path: Path) -> None:
    path, lines = mixed
    ids = [a.id for a in parse_archs(values(lines), 10, SHAPE)]
    r = runner.invoke(app, ["rank", "--dcn", "0.6", "--archs", str(path), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["results"]
    assert sorted(x["arch_id"] for x in rows) == sorted(ids)
    means = {x["arch_id"]: x["mean"] for x in rows}
    # a JSON or long line is labelled by file and line, a short one by its text
    labels = {x["arch"] for x in rows}
    assert CELL in labels and "mixed.txt:4" in labels and "mixed.txt:6" in labels
    # predict: the same file, and values given on the command line (with a file of one)
    one = tmp_path / "nb101.json"
    one.write_text(json.dumps(NB101_README, indent=2))
    r = runner.invoke(app, ["predict", "--dcn", "0.6", DARTS_V2, str(one), "--file", str(path),
                            "--json"])
    assert r.exit_code == 0, r.output
    preds = json.loads(r.stdout)["predictions"]
    assert [p["arch_id"] for p in preds] == [ids[1], ids[3], *ids]
    assert [p["mean"] for p in preds[2:]] == pytest.approx([means[i] for i in ids])
    assert preds[0]["arch"] == DARTS_V2 and preds[1]["arch"] == str(one)


def test_bad_lines_are_named_by_file_and_line(tmp_path: Path, tapas_home: Path) -> None:
    bad = tmp_path / "bad.txt"
    cases = {
        "resnet18": "no known notation (tried nb201, nb201-small, chain, darts, nb101",
        json.dumps({**NB101_README, "ops": ["input", "output"]}): "not a valid nb101 genotype",
        DARTS_V2.replace("sep_conv_3x3", "sep_conv_9x9", 1): "unknown DARTS op 'sep_conv_9x9'",
        '{"space": "resnet50"}': "unknown search space 'resnet50'",
        "{": "malformed JSON",
    }
    for line, message in cases.items():
        bad.write_text(f"# a comment\n{CELL}\n{line}\n")
        for cmd in (["rank", "--dcn", "0.6", "--archs", str(bad)],
                    ["predict", "--dcn", "0.6", "--file", str(bad)]):
            r = runner.invoke(app, cmd)
            out = " ".join(r.output.split())
            assert r.exit_code == 1 and f"{bad}:3: " in out and message in out, (cmd, out)
            assert "Traceback" not in r.output
    # a genotype that reads but does not fit the target is named by its line too
    bad.write_text(f"{CELL}\n\n{DARTS_V2}\n")
    r = runner.invoke(app, ["rank", "--dcn", "0.6", "--archs", str(bad),
                            "--input-shape", "3x30x30"])
    assert r.exit_code == 1 and f"{bad}:1: the nb201 space needs" in " ".join(r.output.split())
    r = runner.invoke(app, ["predict", "--dcn", "0.6", "--input-shape", "3x30x30", DARTS_V2])
    assert r.exit_code == 1 and "the darts space needs inputs whose sides are multiples of 4" \
        in " ".join(r.output.split())


@pytest.fixture(scope="module")
def api(live_server: Any) -> Iterator[Client]:  # noqa: F811
    with Client(live_server.url, token=TOKEN, timeout=120, retries=2, backoff=0.1) as c:
        yield c


def test_the_service_and_client_take_the_same_values(api: Client, tmp_path: Path) -> None:
    lines = mixed_lines()
    ids = [a.id for a in parse_archs(values(lines), 10, SHAPE)]
    for sent in (lines, values(lines)):  # as text, and JSON lines as objects
        preds = api.predict(sent, dcn=0.6, train=True)
        assert [p.arch_id for p in preds] == ids
    with pytest.raises(InvalidArchitecture) as e:
        api.predict([CELL, "resnet18"], dcn=0.6)
    assert e.value.path == "body.archs[1]" and "tried nb201" in str(e.value)
    # rank through the service: the file is read here, the networks built there
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(lines) + "\n")
    r = runner.invoke(app, ["rank", "--dcn", "0.6", "--archs", str(path), "--url", api.url,
                            "--token", TOKEN, "--json"])
    assert r.exit_code == 0, r.output
    assert sorted(x["arch_id"] for x in json.loads(r.stdout)["results"]) == sorted(ids)
    r = runner.invoke(app, ["rank", "--dcn", "0.6", "--archs", str(path), "--url", api.url,
                            "--token", TOKEN, "--input-shape", "3x30x30"])
    assert r.exit_code == 1 and f"{path}:1: " in " ".join(r.output.split())


def test_search_starts_from_a_file_in_any_notation(tmp_path: Path, tapas_home: Path) -> None:
    sized = {"genotype": DARTS_V2, "C": 16, "layers": 8}
    start = tmp_path / "start.txt"
    other = SPACES["darts"].format(SPACES["darts"].sample(random.Random(1)))
    start.write_text(f"# DARTS_V2 at the space's size, twice, then a sampled genotype\n"
                     f"{json.dumps(sized)}\ndarts:{json.dumps(sized)}\n{other}\n")
    r = runner.invoke(app, ["search", "--dcn", "0.6", "--space", "darts", "--strategy", "random",
                            "--budget", "2", "--start", str(start), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    keys = {SPACES["darts"].key(SPACES["darts"].parse(c["genotype"])) for c in res["best"]}
    assert res["queries"] == 2 and len(keys) == 2
    assert SPACES["darts"].key(SPACES["darts"].parse(sized)) in keys
    start.write_text(f"{json.dumps(sized)}\n{CELL}\n")
    r = runner.invoke(app, ["search", "--dcn", "0.6", "--space", "darts", "--start", str(start)])
    assert r.exit_code == 1 and f"{start}:2: reads as nb201, not as a genotype of the darts " \
        "space" in " ".join(r.output.split())
