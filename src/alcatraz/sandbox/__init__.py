"""The sandbox lifecycle: a project, its engine, and the order of `up` and `down`.

`plan` holds the order as pure plans; `up` and `down` observe, plan and carry the plans
out with the building blocks beside them (`project`, `spec`, `guard`, `network`,
`filesync`, `drift`, `trust`, `nethelper`, `netreport`). Nothing is imported here, so
`alca run` pays only for the modules it names.
"""
