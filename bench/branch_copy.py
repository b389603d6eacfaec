"""What `alca up -b NAME` costs before the engine: the private copy of a large repository.

A synthetic repository (`--files` files in one commit, then `--commits` commits that each
change one file, built with `git fast-import`) stands for a big project; the copy is made
by the same code as `up -b` (`alcatraz.sandbox.branchgit.create_copy`), `--rounds` times,
each into a fresh directory. Prints the median time and the disk the copy takes (blocks
actually allocated, `du`), against the checkout and the repository's `.git`. The rest of
`up -b` is an ordinary cold `alca up` (bench/run.py, item 3). No engine, no root needed.

    python bench/branch_copy.py                      # 50,000 files, 2,000 commits, 5 rounds
    python bench/branch_copy.py --files 5000 --rounds 3
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from alcatraz.app import App
from alcatraz.proc import SubprocessRunner
from alcatraz.sandbox import branchgit
from alcatraz.sandbox.branchname import BranchPaths


def fast_import_stream(files: int, commits: int) -> bytes:
    """One commit adding `files` files across 100 directories, then `commits` small ones."""
    lines: list[bytes] = []
    stamp = 1_700_000_000
    lines.append(b"commit refs/heads/main\n")
    lines.append(b"committer bench <bench@example.invalid> %d +0000\n" % stamp)
    lines.append(b"data 4\nbase\n")
    for index in range(files):
        body = b"file %d\n" % index + b"x" * (index % 512) + b"\n"
        path = b"dir%02d/file%06d.txt" % (index % 100, index)
        lines.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path, len(body), body))
    for number in range(commits):
        lines.append(b"commit refs/heads/main\n")
        lines.append(b"committer bench <bench@example.invalid> %d +0000\n" % (stamp + number + 1))
        message = b"change %d" % number
        lines.append(b"data %d\n%s\n" % (len(message), message))
        index = (number * 7919) % files
        body = b"file %d changed %d\n" % (index, number)
        path = b"dir%02d/file%06d.txt" % (index % 100, index)
        lines.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path, len(body), body))
    return b"".join(lines)


def disk_kib(path: Path) -> int:
    """Blocks allocated under `path`, in KiB (what the copy really costs on disk)."""
    done = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


def make_repository(root: Path, files: int, commits: int) -> float:
    started = time.monotonic()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(
        ["git", "-C", str(root), "fast-import", "--quiet"],
        input=fast_import_stream(files, commits),
        check=True,
    )
    subprocess.run(["git", "-C", str(root), "checkout", "-q", "main"], check=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alca-bench-copy-") as scratch:
        base = Path(scratch)
        user = base / "repo"
        built = make_repository(user, args.files, args.commits)
        app = App(
            stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(),
            environ=dict(os.environ), cwd=user, runner=SubprocessRunner(), quiet=True,
        )  # fmt: skip
        seconds: list[float] = []
        sizes: list[int] = []
        for round_number in range(args.rounds):
            paths = BranchPaths.of(base / "alca", user, f"bench/{round_number}")
            started = time.monotonic()
            start = branchgit.start_commit(app, user, f"bench/{round_number}", None)
            branchgit.create_copy(app, user, paths, f"bench/{round_number}", start)
            seconds.append(time.monotonic() - started)
            sizes.append(disk_kib(paths.work / ".git"))
            work_total = disk_kib(paths.work)
            shutil.rmtree(paths.directory)
        checkout = disk_kib(user) - disk_kib(user / ".git")
        print(
            f"repository: {args.files} files, {args.commits + 1} commits (built in {built:.1f} s)"
        )
        dot_git = disk_kib(user / ".git") / 1024
        print(f"user's .git: {dot_git:.1f} MiB; checkout {checkout / 1024:.1f} MiB")
        print(
            f"copy (up -b before the engine): median {statistics.median(seconds):.2f} s "
            f"(min {min(seconds):.2f}, max {max(seconds):.2f}, {args.rounds} rounds)"
        )
        print(
            f"copy on disk: {work_total / 1024:.1f} MiB in all, of which .git "
            f"{statistics.median(sizes) / 1024:.1f} MiB (index and refs; objects shared)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
