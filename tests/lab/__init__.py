"""Tier B network test lab and probe-matrix harness (security test plan §4).

* `topology`: the lab itself (`Lab`: `setup`, `teardown`, `bind_on`, `add_return_route`,
  `records`), its address plan, the overlap pre-check, leftover clean-up, and a stand-in
  firewall (`inet alab-fw`) for the harness's own negative control.
* `servers`: the stdlib token-logging TCP/UDP/ICMP servers run inside the lab namespaces
  and in the root namespace.
* `probe`: the busybox-only client side (shell script run inside the sandbox).
* `matrix`: cells (`tier_b_cells`), configs (`DEFAULT`, `E1`, `OPEN`), `run_matrix`,
  `Report` (`table()`, `failures()`, `explain()`, `rejudge()`), `nft_counters`.
* `fixtures`: `lab_session` / `lab` pytest fixtures.
"""
