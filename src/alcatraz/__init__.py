"""alcatraz: run AI code agents with full permissions, inside a sandbox they cannot leave.

Kept free of imports: everything here is paid by every `alca` invocation, `alca run` included.
"""

__version__ = "0.1.0"
