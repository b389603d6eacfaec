"""`alca doctor`: check everything a sandbox depends on, each with the exact fix.

Every check reports ok, warn, fail or info and never raises: a broken piece must not hide
the report on the others. `host` checks the machine, `project` the configuration and its
sandbox, `report` renders them. Exit status is 0 when nothing fails, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json

from alcatraz.app import App
from alcatraz.commands.doctor.engineapi import check_engine_api
from alcatraz.commands.doctor.host import (
    EnvRunner,
    check_engines,
    check_host_ca,
    check_mutagen,
    check_network,
    check_setuid_guard,
)
from alcatraz.commands.doctor.project import (
    ProjectFindings,
    check_names,
    check_project,
    check_sandbox,
)
from alcatraz.commands.doctor.report import FAIL, INFO, OK, WARN, Check, DoctorReport, render
from alcatraz.errors import ExitCode

__all__ = ["FAIL", "INFO", "OK", "WARN", "Check", "DoctorReport", "EnvRunner", "collect", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def collect(app: App) -> list[Check]:
    """Every check, in the order a user would fix them."""
    runner = EnvRunner(app.runner, app.environ)
    found = ProjectFindings()
    project_checks = check_project(app, found)
    engine_checks, runtime = check_engines(app, runner, found.config)
    engine = runtime.executable if runtime is not None else "docker"
    checks = [*engine_checks]
    if runtime is not None:
        checks.append(check_engine_api(runtime.executable, app.environ))
    checks += check_network(app, runner, found.config, engine)
    checks.append(check_mutagen(app, runner, found.config, engine))
    checks.append(check_setuid_guard(app, found.config))
    checks += project_checks
    sandbox_check = check_sandbox(app, found)
    if sandbox_check is not None:
        checks.append(sandbox_check)
    names_check = check_names(found)
    if names_check is not None:
        checks.append(names_check)
    checks.append(check_host_ca(app, found.config))
    return checks


def main(args: argparse.Namespace, app: App) -> int:
    report = DoctorReport(tuple(collect(app)))
    if args.json:
        app.out(json.dumps(report.to_json(), indent=2))
    else:
        for line in render(report):
            app.out(line)
    return ExitCode.FAILURE if report.failed else ExitCode.OK
