"""The project's daemon on its gateway: resolver, egress filter, name checker, host-LAN sets.

`up` writes the daemon's policy file (what `network.egress` allows, the nft sets to fill,
the socket mark the rules expect) into the project's state directory and starts the
daemon (`alcatraz.network.resolver`); a daemon running with an older policy is restarted,
so a changed `egress` applies on `up`.
"""

from __future__ import annotations

import os
from pathlib import Path

from alcatraz.app import App
from alcatraz.config.load import Config
from alcatraz.config.netgrammar.egress import render_egress_rule
from alcatraz.network import resolver
from alcatraz.network.egress import rules as egress_rules
from alcatraz.network.egress.policy import DaemonPolicy
from alcatraz.network.plan import Policy
from alcatraz.statefile import ResolverEntry

POLICY_FILE = "daemon-policy.json"
EVENTS_FILE = "egress-events.jsonl"
#: Bounds on how long an answer's addresses stay allowed (seconds).
TTL_MIN, TTL_MAX = 30, 3600


def daemon_policy(
    config: Config, policy: Policy, state_dir: Path, nft_command: list[str]
) -> DaemonPolicy:
    """What the daemon enforces for `policy` (`egress.policy.DaemonPolicy`, its file)."""
    egress = None if policy.egress is None else tuple(map(render_egress_rule, policy.egress))
    return DaemonPolicy(
        key=policy.key,
        interface=policy.network.interface,
        listen=str(policy.network.gateway),
        mark=egress_rules.MARK,
        egress=egress,
        checker_port=egress_rules.CHECKER_PORT,
        upstreams=tuple(config.dns),
        ttl_min=TTL_MIN,
        ttl_max=TTL_MAX,
        events=str(state_dir / EVENTS_FILE),
        nft=tuple(nft_command),
    )


def start(
    app: App, config: Config, policy: Policy, state_dir: Path, nft_command: list[str]
) -> ResolverEntry:
    """Write the policy, restart a daemon that runs with another one, start it."""
    path = state_dir / POLICY_FILE
    text = daemon_policy(config, policy, state_dir, nft_command).to_json()
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        old = None
    entry = resolver.record(str(policy.network.gateway), str(state_dir), "")._replace(
        policy=str(path)
    )
    if old != text or resolver.running(entry) is None:
        resolver.stop(entry)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return resolver.start(entry.listen, state_dir, app.environ, policy=str(path))
