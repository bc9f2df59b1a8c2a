"""mosaic fleet: run, supervise and talk to a fleet of AI coding agents in tmux.

Kept import-free on purpose: `mosaic --version` must not pay for anything heavy.
"""

__version__ = "0.1.0"
