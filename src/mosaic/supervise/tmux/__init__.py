"""The built-in supervisor: no process of ours stays resident.

`supervisor.py` starts and stops agents; tmux's `remain-on-exit` keeps a dead pane, its
`pane-died` hook runs `hooks.py`, which applies `backoff.py` (the pure restart policy) and
asks tmux to respawn the pane after the delay.
"""
