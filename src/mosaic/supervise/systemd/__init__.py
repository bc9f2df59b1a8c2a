"""The systemd supervisor: user units keep the agents alive.

`units.py` renders the unit files (pure), `install.py` plans and applies (un)installs,
`systemctl.py` is the one door to `systemctl --user`, `supervisor.py` starts, stops and
reads the fleet through it, and `unitexec.py` is what the units themselves run.
"""
