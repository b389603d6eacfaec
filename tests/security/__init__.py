"""Security tests: sandbox posture, filesystem attacks, hostile input, data safety (issue #7)."""
