"""`alca` entry point: the error boundary, and a dispatch that imports only what it needs.

`main` is the console script. It imports nothing heavy at module level: each command's
module is imported on dispatch, and `alca run` takes a stdlib-only path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from alcatraz.errors import AlcaError, ExitCode

TYPE_CHECKING = False  # not from `typing`: `alca run` imports this module (~5 ms)
if TYPE_CHECKING:
    from typing import NoReturn


def _print_traceback(error: BaseException) -> None:
    """The traceback, made printable: its last line is the error's message, which may carry
    a name or an engine's words the agent wrote (`traceback` would print them raw)."""
    import traceback

    from alcatraz.printable import printable_lines

    sys.stderr.write(printable_lines("".join(traceback.format_exception(error))))
    sys.stderr.flush()


def _report_bug(error: BaseException) -> int:
    _print_traceback(error)
    sys.stderr.write(
        "\nThis is a bug in alcatraz, not in your setup. Please report it with the text above.\n"
    )
    return ExitCode.INTERNAL


def _run_option(first: list[str]) -> bool:
    """Whether `alca run`'s first argument is its own option (help, `-b NAME`): the parser
    then handles it; any other first word is the command, on the fast path."""
    return bool(first) and (
        first[0] in ("-h", "--help", "-b", "--branch") or first[0].startswith(("--branch=", "-b"))
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `alca` command; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("ALCA_DEBUG", "") not in ("", "0")
    try:
        if args[:1] == ["run"] and not _run_option(args[1:2]):
            from alcatraz.sandbox.enter import run

            return run(args[1:])
        from alcatraz.cli.parser import dispatch

        return dispatch(args)
    except AlcaError as error:
        if debug:
            _print_traceback(error)
        from alcatraz.printable import printable_lines

        sys.stderr.write(printable_lines(error.render()) + "\n")
        return int(error.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `alca list | head`): not an error worth a traceback.
        import contextlib

        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return ExitCode.OK
    except Exception as error:
        return _report_bug(error)


def entry() -> NoReturn:
    """The console script: `main`, then leave without the interpreter's shutdown.

    Why: the shutdown's module teardown and final garbage collection cost 4-20 ms on every
    command. Nothing alcatraz does waits for it: files are closed by `with`, threads are
    joined, children are processes of their own, and no `atexit` handler is registered.
    Only the standard streams' buffers need writing out, which is done here.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib costs ~4 ms on `alca run`'s path
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a closed stream
            pass
    os._exit(code)
