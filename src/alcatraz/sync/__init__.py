"""File sync between the host and a sandbox, for mounts whose excluded files must stay out.

A bind mount cannot hide a file that is created later, so mounts with exclude patterns are
synced with Mutagen instead (`alcatraz.sync.mutagen`); conflicts that two-way sync leaves
for a person to decide are parsed, cached and mapped back to paths in
`alcatraz.sync.conflicts`.
"""
