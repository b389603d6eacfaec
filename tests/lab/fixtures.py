"""pytest fixtures for the Tier B lab. Import them into a test module (or a conftest):

    from tests.lab.fixtures import lab_fixture, lab_session_fixture  # noqa: F401

(registered under the names `lab` and `lab_session`, so test parameters do not shadow
the imports)

* `lab_session` (session): the one `Lab` object; torn down at the end of the session, even
  after failures. A set-up problem (an overlapping prefix, a busy port, leftovers that
  cannot be removed) raises `LabError`, so the tests ERROR: never a skip.
* `lab` (function): the same lab, (re)built if a test tore it down; also checks after the
  test that every lab server is still alive.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.topology import Lab, LabError, leftovers


@pytest.fixture(scope="session", name="lab_session")
def lab_session_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(workdir=tmp_path_factory.mktemp("alab"))
    try:
        yield lab
    finally:
        errors = lab.teardown()
        left = leftovers()
        if errors or left:
            raise LabError("lab teardown incomplete:\n  " + "\n  ".join(errors + left))


@pytest.fixture(name="lab")
def lab_fixture(lab_session: Lab) -> Iterator[Lab]:
    lab_session.ensure_up()
    yield lab_session
    dead = lab_session.dead_servers()
    if dead:
        raise LabError(f"lab servers died during the test: {dead} (see {lab_session.workdir})")
