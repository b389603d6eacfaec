"""Issue 17's bench report (bench/commands_report.py): the ratios and the table, from samples."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, _BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


_load("benchstats")
report = _load("commands_report")


def samples() -> dict[str, dict[str, dict[str, list[float]]]]:
    """Two engines, two loads, three rounds; Podman twice Docker, 200 projects 1.5× of 1."""
    docker_1 = {
        "exec": [100.0, 100.0, 100.0],
        "run": [110.0, 120.0, 130.0],
        "run_cli": [150.0, 150.0, 150.0],
        "exec_tty": [100.0, 100.0, 100.0],
        "run_tty": [100.0, 105.0, 104.0],
        "up_warm": [220.0, 220.0, 220.0],
        "status": [58.0, 29.0, 58.0],
        "list": [40.0, 40.0, 40.0],
        "up_cold": [450.0, 900.0, 450.0],
    }
    docker_200 = {k: [v * 1.5 for v in values] for k, values in docker_1.items()}

    def doubled(table: dict[str, list[float]]) -> dict[str, list[float]]:
        return {k: [v * 2 for v in values] for k, values in table.items()}

    return {
        "docker": {"1": docker_1, "200": docker_200},
        "podman": {"1": doubled(docker_1), "200": doubled(docker_200)},
    }


def test_run_ratios_are_paired_within_each_round():
    found = report.figures(samples())
    pipes = found["run"]["docker"]["1"]["pipes"]
    assert pipes["median"] == pytest.approx(1.2)
    assert (pipes["min"], pipes["max"]) == (pytest.approx(1.1), pytest.approx(1.3))
    assert found["run"]["docker"]["1"]["pty"]["median"] == pytest.approx(1.04)
    assert found["run"]["podman"]["200"]["pipes, CLI forced"]["median"] == pytest.approx(1.5)


def test_go_load_and_engine_ratios():
    found = report.figures(samples())
    assert found["go"]["up_warm"]["median"] == pytest.approx(2.0)
    assert found["go"]["status"]["median"] == pytest.approx(1.0)
    assert found["go"]["up_cold"]["max"] == pytest.approx(2.0)
    assert "list" not in found["go"]  # the Go tool has no figure for it
    assert found["load"]["podman"]["status"]["median"] == pytest.approx(1.5)
    assert found["engines"]["200"]["up_cold"]["median"] == pytest.approx(2.0)
    assert found["ms"]["podman"]["1"]["list"]["median"] == pytest.approx(80.0)


def test_uneven_rounds_are_paired_over_the_common_ones():
    data = samples()
    data["podman"]["1"]["exec"].append(1.0)  # a run stopped by an error mid-round
    found = report.figures(data)
    assert found["engines"]["1"]["exec"]["n"] == 3
    assert found["engines"]["1"]["exec"]["median"] == pytest.approx(2.0)


def test_one_engine_gives_no_engine_ratio():
    data = samples()
    del data["podman"]
    found = report.figures(data)
    assert found["engines"] == {}
    assert "podman" not in found["run"]


def test_markdown_shows_every_figure_with_its_verdict():
    text = report.render(
        {"samples": samples(), "engines": ["docker", "podman"], "mode": "quick",
         "run_path": {"docker": "api", "podman": "cli"}, "machine": {"commit": "abc1234"}}
    )  # fmt: skip
    lines = text.splitlines()
    pipes_1 = next(line for line in lines if line.startswith("| pipes | 1 |"))
    assert "1.20 (IQR 1.15–1.25) **not met**" in pipes_1
    forced = next(line for line in lines if line.startswith("| pipes, CLI forced | 200 |"))
    assert forced.endswith("| – |")  # no target: it shows what the API saves
    warm = next(line for line in lines if "`alca up` (already up" in line and "Docker" in line)
    assert "220.0 ms" in warm and "2.00 (IQR 2.00–2.00) **not met**" in warm
    assert "1.50 (IQR 1.50–1.50) **not met**" in warm  # 200 ÷ 1 above 1.1
    podman_list = next(line for line in lines if "`alca list`" in line and "Podman" in line)
    assert podman_list.endswith("| 2.00 (IQR 2.00–2.00) **not met** |")
    assert "Docker: api, Podman: cli" in text
    assert "abc1234" in text


def test_markdown_lists_errors():
    text = report.render({"samples": {}, "engines": [], "errors": ["docker: boom"]})
    assert "## Errors" in text and "- docker: boom" in text
