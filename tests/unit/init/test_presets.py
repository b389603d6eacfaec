"""`alca init git+URL` and `alca init --update`, against real local git repositories."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from alcatraz.app import App
from alcatraz.errors import AlcaError, ExitCode, UnavailableError, UsageError
from alcatraz.init import preset_cache, preset_url, presets
from alcatraz.init.files import write_text_atomic
from tests.conftest import tree_snapshot
from tests.fakes import FakeTTY, project_app
from tests.unit.commands.test_init import err, out, run_init

NODE = 'image = "node:22"\n'
EXAMPLE = '[envs]\nEXAMPLE = "1"\n'


def _git_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }


@dataclass
class Repo:
    """A source repository the tests publish presets from."""

    path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return "git+" + self.path.as_uri()

    @property
    def clone_url(self) -> str:
        return self.path.as_uri()

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or delete, for None) files, commit, return the new commit hash."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


def make_repo(tmp_path: Path, files: dict[str, str | None], name: str = "presets.repo") -> Repo:
    path = tmp_path / "remote" / name
    path.mkdir(parents=True)
    repo = Repo(path, _git_env(tmp_path / "githome"))
    repo.git("init", "-q")
    repo.commit(files, "first")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(
        tmp_path,
        {
            ".alca.node.toml": NODE,
            ".alca.py.toml.example": EXAMPLE,
            "README.md": "# presets\n",
            ".alca.toml": 'image = "not a preset"\n',
            "sub/.alca.sub.toml": 'image = "sub"\n',
        },
    )


def make_app(tmp_path: Path, stdin: io.StringIO | None = None, name: str = "project") -> App:
    """A project App whose git reads no system-wide configuration."""
    return project_app(tmp_path, stdin, name=name, GIT_CONFIG_NOSYSTEM="1")


def header(repo: Repo, commit: str, path: str) -> str:
    return f"# Alcatraz Preset Source: git+{repo.clone_url}#{commit}:{path}\n"


# -- download -------------------------------------------------------------------------------


def test_downloads_every_preset_without_a_terminal(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    head = repo.git("rev-parse", "HEAD")
    assert run_init(app, repo.url) == ExitCode.OK
    assert sorted(p.name for p in app.cwd.iterdir()) == [".alca.node.toml", ".alca.py.toml.example"]
    node = (app.cwd / ".alca.node.toml").read_text()
    assert node == header(repo, head, ".alca.node.toml") + NODE
    example = (app.cwd / ".alca.py.toml.example").read_text()
    assert example == header(repo, head, ".alca.py.toml.example") + EXAMPLE
    assert out(app) == "Downloaded .alca.node.toml\nDownloaded .alca.py.toml.example\n"
    assert err(app) == ""
    assert oct((app.cwd / ".alca.node.toml").stat().st_mode & 0o777) == oct(0o644)


def test_cache_is_a_bare_repository_at_the_documented_path(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    run_init(app, repo.url)
    repo_path = str(repo.path).lstrip("/").replace(".", "-")
    cache = app.home / "cache-presets" / "localhost" / "git-file" / "-" / repo_path
    assert (cache / "HEAD").is_file() and (cache / "objects").is_dir()
    assert not (cache / ".git").exists()


def test_directory_fragment(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    head = repo.git("rev-parse", "HEAD")
    run_init(app, repo.url + "#:sub")
    assert [p.name for p in app.cwd.iterdir()] == [".alca.sub.toml"]
    text = (app.cwd / ".alca.sub.toml").read_text()
    assert text == header(repo, head, "sub/.alca.sub.toml") + 'image = "sub"\n'


def test_pinned_commit(tmp_path: Path, repo: Repo) -> None:
    first = repo.git("rev-parse", "HEAD")
    repo.commit({".alca.node.toml": 'image = "node:24"\n'})
    app = make_app(tmp_path)
    run_init(app, f"{repo.url}#{first}:")
    assert (app.cwd / ".alca.node.toml").read_text() == header(
        repo, first, ".alca.node.toml"
    ) + NODE


def test_short_commit_needs_the_full_hash_from_a_remote(tmp_path: Path, repo: Repo) -> None:
    short = repo.git("rev-parse", "HEAD")[:8]
    app = make_app(tmp_path)
    with pytest.raises(preset_cache.FetchError) as caught:
        run_init(app, f"{repo.url}#{short}")
    assert "40-digit" in (caught.value.hint or "")
    assert tree_snapshot(app.cwd) == {}


def test_pinned_commit_in_cache_needs_no_network(tmp_path: Path, repo: Repo) -> None:
    full = repo.git("rev-parse", "HEAD")
    run_init(make_app(tmp_path, name="a"), f"{repo.url}#{full}")
    shutil.rmtree(repo.path)  # the remote is gone: only the cache can answer now
    app = make_app(tmp_path, name="b")
    assert run_init(app, f"{repo.url}#{full}") == ExitCode.OK
    assert (app.cwd / ".alca.node.toml").read_text() == header(repo, full, ".alca.node.toml") + NODE
    # A short prefix of a cached commit works too, and is recorded in full.
    app = make_app(tmp_path, name="c")
    run_init(app, f"{repo.url}#{full[:7]}")
    assert (
        (app.cwd / ".alca.node.toml").read_text().startswith(header(repo, full, ".alca.node.toml"))
    )
    # Without a pin the remote's HEAD is needed, so this fails.
    with pytest.raises(preset_cache.FetchError) as caught:
        run_init(make_app(tmp_path, name="d"), repo.url)
    assert caught.value.exit_code == ExitCode.FAILURE
    assert caught.value.message.startswith(f"failed to fetch {repo.clone_url}: ")


def test_no_presets_in_root(tmp_path: Path) -> None:
    empty = make_repo(tmp_path, {"README.md": "x\n", "sub/.alca.x.toml": "a = 1\n"})
    app = make_app(tmp_path)
    with pytest.raises(AlcaError) as caught:
        run_init(app, empty.url)
    assert caught.value.message == "no preset files (.alca.*.toml) found in repository root"
    assert tree_snapshot(app.cwd) == {}


def test_no_presets_in_directory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"docs/README.md": "x\n"})
    app = make_app(tmp_path)
    with pytest.raises(AlcaError) as caught:
        run_init(app, repo.url + "#:docs")
    assert caught.value.message == 'no preset files (.alca.*.toml) found in directory "docs"'


def test_missing_directory(tmp_path: Path, repo: Repo) -> None:
    with pytest.raises(AlcaError, match='directory "nope" not found'):
        run_init(make_app(tmp_path), repo.url + "#:nope")


def test_existing_file_is_skipped_with_a_warning_without_a_terminal(
    tmp_path: Path, repo: Repo
) -> None:
    app = make_app(tmp_path)
    mine = app.cwd / ".alca.node.toml"
    mine.write_text("# mine\n")
    assert run_init(app, repo.url) == ExitCode.OK
    assert mine.read_text() == "# mine\n"
    assert "Warning: .alca.node.toml already exists and was not overwritten" in err(app)
    assert (app.cwd / ".alca.py.toml.example").is_file()
    assert out(app) == "Downloaded .alca.py.toml.example\n"


@pytest.mark.parametrize(("answer", "overwritten"), [("n\n", False), ("y\n", True), ("\n", False)])
def test_existing_file_asks_on_a_terminal(
    tmp_path: Path, repo: Repo, answer: str, overwritten: bool
) -> None:
    app = make_app(tmp_path, FakeTTY("1\n" + answer))
    mine = app.cwd / ".alca.node.toml"
    mine.write_text("# mine\n")
    run_init(app, repo.url)
    assert "File .alca.node.toml already exists. Overwrite? [y/N]" in out(app)
    assert (mine.read_text() != "# mine\n") is overwritten


def test_terminal_multi_select(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path, FakeTTY("7\n2\n"))
    run_init(app, repo.url)
    text = out(app)
    assert "Select preset files to download" in text
    assert "1) .alca.node.toml" in text
    assert "2) .alca.py.toml.example  (example file — .example suffix kept)" in text
    assert "Please enter numbers between 1 and 2" in text
    assert [p.name for p in app.cwd.iterdir()] == [".alca.py.toml.example"]


def test_terminal_enter_selects_all(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path, FakeTTY("\n"))
    run_init(app, repo.url)
    assert len(list(app.cwd.iterdir())) == 2


def test_terminal_end_of_input_cancels(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path, FakeTTY(""))
    with pytest.raises(AlcaError, match="cancelled"):
        run_init(app, repo.url)
    assert tree_snapshot(app.cwd) == {}


def test_invalid_toml_preset_writes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {".alca.good.toml": "a = 1\n", ".alca.bad.toml": "a = \n"})
    app = make_app(tmp_path)
    with pytest.raises(AlcaError) as caught:
        run_init(app, repo.url)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert ".alca.bad.toml" in caught.value.message
    assert tree_snapshot(app.cwd) == {}


def test_republished_source_comment_is_not_doubled(tmp_path: Path) -> None:
    old = "# Alcatraz Preset Source: git+https://example.com/x.git#abcd:.alca.a.toml\n"
    repo = make_repo(tmp_path, {".alca.a.toml": old + "a = 1\n"})
    app = make_app(tmp_path)
    run_init(app, repo.url)
    text = (app.cwd / ".alca.a.toml").read_text()
    assert text.count("Alcatraz Preset Source") == 1
    assert text.endswith("\na = 1\n") and repo.clone_url in text


def test_git_environment_of_the_caller_does_not_leak_in(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    app.environ["GIT_DIR"] = str(tmp_path / "not-a-repo")
    app.environ["GIT_WORK_TREE"] = str(tmp_path)
    assert run_init(app, repo.url) == ExitCode.OK
    assert (app.cwd / ".alca.node.toml").is_file()


def test_missing_git_is_unavailable(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    app.environ["PATH"] = str(empty_bin)
    with pytest.raises(UnavailableError) as caught:
        run_init(app, repo.url)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert "install git" in (caught.value.hint or "")


# -- validation before any git command ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("git+file:///r#xyz1:", "invalid commit"),
        ("git+file:///r#abc:", "invalid commit"),  # shorter than 4
        ("git+file:///r#" + "a" * 41 + ":", "invalid commit"),
        ("git+file:///r#:../etc", "must not contain"),
        ("git+file:///r#:a/../../b", "must not contain"),
        ("git+file:///r#:a:b", "must not contain"),
        ("git+file:///my repo", "whitespace"),
        ("git+file:///r\x1b[31m", "control"),
        ("git+file:///r\n", "whitespace"),
        ("git+ext::sh -c touch%20x", "whitespace"),
        ("git+ext::sh", "unsupported"),
        ("git+git@github.com:owner/repo.git", "unsupported"),
        ("git+https:///nohost", "missing host"),
        ("git+ssh://-oProxyCommand=x/repo", "must not start with '-'"),
        ("git+file://otherhost/r", "must be local"),
        ("git+https://host:99999/r", "invalid preset URL"),
        ("https://example.com/r.git", "expected git+"),
    ],
)
def test_bad_sources_are_usage_errors_before_git_runs(
    tmp_path: Path, source: str, fragment: str
) -> None:
    app = make_app(tmp_path)
    with pytest.raises(UsageError) as caught:
        run_init(app, source)
    assert caught.value.exit_code == ExitCode.USAGE
    assert fragment in caught.value.message
    assert not (app.home / "cache-presets").exists()
    assert tree_snapshot(app.cwd) == {}


def test_parse_source_parts() -> None:
    source = preset_url.parse_source(
        "git+https://Example.COM:8443/team/presets.git#ABCDEF12:a/./b/"
    )
    assert source.url == "https://Example.COM:8443/team/presets.git"
    assert (source.scheme, source.host, source.path) == (
        "https",
        "example.com:8443",
        "/team/presets.git",
    )
    assert source.commit == "abcdef12"
    assert source.directory == "a/b"
    assert not source.has_credentials
    assert preset_url.parse_source("git+ssh://git@host/r").has_credentials is False
    bare = preset_url.parse_source("git+file:///srv/r.git#")
    assert (bare.host, bare.commit, bare.directory) == ("localhost", None, "")


def test_cache_dir_never_contains_secrets(tmp_path: Path) -> None:
    with_password = preset_url.parse_source("git+https://bob:hunter2@host/a.b/c.git")
    path = preset_url.cache_dir(tmp_path, with_password)
    assert "hunter2" not in str(path)
    assert path.parts[-5:-2] == ("host", "git-https", path.parts[-3])
    assert path.parts[-3].startswith("bob-")
    assert path.parts[-2:] == ("a-b", "c-git")
    token = preset_url.parse_source("git+https://ghp_token123@host/r")
    assert "ghp_token123" not in str(preset_url.cache_dir(tmp_path, token))
    ssh = preset_url.parse_source("git+ssh://git@host/r")
    assert preset_url.cache_dir(tmp_path, ssh).parts[-2] == "git"
    dots = preset_url.parse_source("git+https://host/../../etc/passwd")
    assert tmp_path / "cache-presets" in preset_url.cache_dir(tmp_path, dots).parents


def test_credentials_warning_and_no_secret_in_messages(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    # Port 9 on localhost refuses at once; git must neither prompt nor block.
    with pytest.raises(preset_cache.FetchError) as caught:
        run_init(app, "git+https://bob:hunter2@127.0.0.1:9/r.git")
    lines = err(app).splitlines()
    assert lines[0].startswith("Warning: The URL contains credentials")
    assert len(lines) == 3
    assert "hunter2" not in caught.value.render()
    assert "https://bob:***@127.0.0.1:9/r.git" in caught.value.message


# -- update ---------------------------------------------------------------------------------


def test_update_rewrites_content_and_commit(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    run_init(app, repo.url + "#:sub")
    run_init(app, repo.url)
    newer = repo.commit({".alca.node.toml": 'image = "node:24"\n', "sub/.alca.sub.toml": "x = 2\n"})
    app = make_app(tmp_path)
    assert run_init(app, "--update", "--yes") == ExitCode.OK
    assert (app.cwd / ".alca.node.toml").read_text() == (
        header(repo, newer, ".alca.node.toml") + 'image = "node:24"\n'
    )
    assert (app.cwd / ".alca.sub.toml").read_text() == (
        header(repo, newer, "sub/.alca.sub.toml") + "x = 2\n"
    )
    example = (app.cwd / ".alca.py.toml.example").read_text()
    assert example == header(repo, newer, ".alca.py.toml.example") + EXAMPLE
    assert "Updated .alca.node.toml" in out(app)
    assert err(app) == ""


def test_update_when_current_says_so(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    run_init(app, repo.url)
    before = tree_snapshot(app.cwd)
    app = make_app(tmp_path)
    run_init(app, "--update", "--yes")
    assert tree_snapshot(app.cwd) == before
    assert ".alca.node.toml is up to date" in out(app)


def test_update_with_nothing_to_do_is_silent(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app.cwd / ".alca.local.toml").write_text("a = 1\n")
    (app.cwd / ".alca.toml").write_text('image = "x"\n')
    assert run_init(app, "--update", "--yes") == ExitCode.OK
    assert out(app) == err(app) == ""
    assert not (app.home / "cache-presets").exists()


def test_update_fetch_failure_uses_the_cache(tmp_path: Path, repo: Repo) -> None:
    first = repo.git("rev-parse", "HEAD")
    newer = repo.commit({".alca.node.toml": 'image = "node:24"\n'})
    run_init(make_app(tmp_path, name="a"), repo.url)  # caches the newest commit
    app = make_app(tmp_path, name="b")
    run_init(app, f"{repo.url}#{first}")
    shutil.rmtree(repo.path)
    app = make_app(tmp_path, name="b")
    assert run_init(app, "--update", "--yes") == ExitCode.OK
    warning = err(app)
    assert warning.startswith(f"Warning: failed to fetch {repo.clone_url}: ")
    assert warning.rstrip().endswith(". Using cached version.")
    assert (app.cwd / ".alca.node.toml").read_text() == (
        header(repo, newer, ".alca.node.toml") + 'image = "node:24"\n'
    )


def test_update_fetch_failure_without_cache_fails(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    gone = (tmp_path / "gone").as_uri()
    text = f"# Alcatraz Preset Source: git+{gone}#{'a' * 40}:.alca.x.toml\nx = 1\n"
    (app.cwd / ".alca.x.toml").write_text(text)
    with pytest.raises(AlcaError) as caught:
        run_init(app, "--update", "--yes")
    assert caught.value.exit_code == ExitCode.FAILURE
    assert f"Warning: failed to fetch {gone}: " in err(app)
    assert (app.cwd / ".alca.x.toml").read_text() == text


def test_update_file_gone_upstream_is_left_alone(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    run_init(app, repo.url)
    before = (app.cwd / ".alca.node.toml").read_bytes()
    repo.commit({".alca.node.toml": None})
    app = make_app(tmp_path)
    assert run_init(app, "--update", "--yes") == ExitCode.OK
    assert (
        f"Warning: .alca.node.toml no longer exists in {repo.clone_url}, "
        "leaving local file untouched"
    ) in err(app)
    assert (app.cwd / ".alca.node.toml").read_bytes() == before


def test_update_invalid_new_toml_keeps_the_old_file(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    run_init(app, repo.url)
    before = (app.cwd / ".alca.node.toml").read_bytes()
    repo.commit({".alca.node.toml": "image = [broken\n", ".alca.py.toml.example": "b = 2\n"})
    app = make_app(tmp_path)
    with pytest.raises(AlcaError) as caught:
        run_init(app, "--update", "--yes")
    assert caught.value.exit_code == ExitCode.CONFIG
    assert ".alca.node.toml" in caught.value.message
    assert "left unchanged" in caught.value.message
    assert (app.cwd / ".alca.node.toml").read_bytes() == before
    assert (app.cwd / ".alca.py.toml.example").read_text().endswith("\nb = 2\n")


def test_update_keeps_local_edits_without_a_terminal(tmp_path: Path, repo: Repo) -> None:
    app = make_app(tmp_path)
    run_init(app, repo.url)
    mine = app.cwd / ".alca.node.toml"
    mine.write_text(mine.read_text() + "# my tweak\n")
    edited = mine.read_text()
    repo.commit({".alca.node.toml": 'image = "node:24"\n'})
    app = make_app(tmp_path)
    assert run_init(app, "--update", "--yes") == ExitCode.OK
    assert mine.read_text() == edited
    assert ".alca.node.toml has local changes; not updated" in err(app)
    app = make_app(tmp_path, FakeTTY("y\ny\n"))  # the source, then the overwrite
    run_init(app, "--update")
    assert "File .alca.node.toml has local changes. Overwrite?" in out(app)
    assert mine.read_text().endswith('image = "node:24"\n')


def test_update_skips_malformed_and_unsafe_source_comments(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    bad = "# Alcatraz Preset Source: git+file:///r#nothex:.alca.a.toml\na = 1\n"
    unsafe = "# Alcatraz Preset Source: git+ext::sh#" + "a" * 40 + ":.alca.b.toml\nb = 1\n"
    (app.cwd / ".alca.a.toml").write_text(bad)
    (app.cwd / ".alca.b.toml").write_text(unsafe)
    assert run_init(app, "--update", "--yes") == ExitCode.OK
    assert "Warning: .alca.a.toml: malformed preset source comment" in err(app)
    assert "Warning: .alca.b.toml: unsupported preset URL" in err(app)
    assert not (app.home / "cache-presets").exists()


# -- helpers --------------------------------------------------------------------------------


def test_source_comment_round_trip() -> None:
    line = preset_url.format_source_comment("https://h/r.git", "a" * 40, "d/.alca.x.toml")
    parsed = preset_url.parse_source_comment("# first comment\n" + line + "\nx = 1\n")
    assert parsed is not None
    assert (parsed.source.url, parsed.commit, parsed.path) == (
        "https://h/r.git",
        "a" * 40,
        "d/.alca.x.toml",
    )
    assert preset_url.parse_source_comment("x = 1\n" + line) is None  # only leading comments


@pytest.mark.parametrize(
    ("answer", "chosen"),
    [
        ("", [0, 1, 2, 3]),
        ("  \n", [0, 1, 2, 3]),
        ("2", [1]),
        ("3,1", [2, 0]),
        ("1 2", [0, 1]),
        ("2-4,2", [1, 2, 3]),
        ("0", None),
        ("5", None),
        ("3-2", None),
        ("a", None),
        ("1-", None),
        (",", None),
    ],
)
def test_parse_selection(answer: str, chosen: list[int] | None) -> None:
    assert presets._parse_selection(answer, 4) == chosen


def test_strip_source_comments_keeps_everything_else() -> None:
    text = (
        "# a\n# Alcatraz Preset Source: git+x#abcd:y\n# b\u2028c\n"
        "k = 1\n# Alcatraz Preset Source: z\n"
    )
    assert preset_url.strip_source_comments(text) == (
        "# a\n# b\u2028c\nk = 1\n# Alcatraz Preset Source: z\n"
    )


def test_write_text_atomic(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    write_text_atomic(path, "a\n", exclusive=True)
    assert path.read_text() == "a\n"
    with pytest.raises(FileExistsError):
        write_text_atomic(path, "b\n", exclusive=True)
    assert path.read_text() == "a\n"
    path.chmod(0o600)
    write_text_atomic(path, "c\n")
    assert path.read_text() == "c\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.toml"]  # no temporary left behind
