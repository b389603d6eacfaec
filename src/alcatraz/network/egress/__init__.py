"""Egress by name (issue 15): the policy the project's daemon enforces, its DNS filter, the
name checker and the host-LAN sets. Used by the daemon process and by the rules renderer."""
