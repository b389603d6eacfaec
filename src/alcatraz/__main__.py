"""`python -m alcatraz` is the same as `alca`."""

from alcatraz.cli import entry

entry()
