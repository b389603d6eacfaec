"""`alca init`: templates, agent presets and git presets, the files it writes for the user.

Kept apart from `alcatraz.config`, which only reads and checks configuration: everything
here may prompt, run git or write into the project.
"""
