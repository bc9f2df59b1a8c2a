"""Name rules shared by the roster, the tmux hooks and the CLI: one copy of each pattern.

Agent names become tmux session names, systemd instance names and file names, so they are
restricted to what all three take without quoting. Kept to `re` alone: the pane-died hook
imports it on every agent exit.
"""

from __future__ import annotations

import re

NAME_PATTERN = "[a-z][a-z0-9_-]{0,31}"
SOCKET_PATTERN = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
ENV_KEY_PATTERN = "[A-Za-z_][A-Za-z0-9_]*"
# Host names (roster `hosts:`) name the host's SSH control socket file, so no '/' or '%'
# (ssh expands %-tokens in ControlPath); `local` is reserved for this machine.
HOST_NAME_PATTERN = "[a-z0-9][a-z0-9_.-]{0,31}"
LOCAL_HOST = "local"
# An SSH destination `[user@]host` (a ~/.ssh/config alias, a DNS name, IPv4 or bare IPv6).
# It is always passed after `--`, and this charset keeps it from ever reading as an option,
# a URI or a second argument anyway: no leading '-', no whitespace, no control characters.
SSH_TARGET_PATTERN = "(?:[A-Za-z0-9_][A-Za-z0-9_.-]*@)?[A-Za-z0-9_][A-Za-z0-9_.:-]*"

# The watcher's tmux session: no agent can have this name (agent names start with a letter).
WATCHER_SESSION = "_watcher"

_AGENT_NAME = re.compile(NAME_PATTERN)


def is_agent_name(text: str) -> bool:
    return _AGENT_NAME.fullmatch(text) is not None
