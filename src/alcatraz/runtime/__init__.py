"""Container engines: the `Runtime` protocol (`base`), Docker and Podman, and detection.

Import the submodules directly; this package imports nothing so `alca run` stays cheap.
"""
