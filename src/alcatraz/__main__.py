"""`python -m alcatraz` is the same as `alca`."""

from alcatraz.cli import main

raise SystemExit(main())
