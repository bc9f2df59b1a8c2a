"""The watcher (docs/architecture.md, "watcher"): one resident process per fleet that turns
what the agents' screens show into events, and events into notifications.

    changes.py   which panes changed since the last look (reusable: the web dashboard too)
    tracker.py   per-agent activity with debounce and stuck detection (pure)
    notify.py    notification targets: matching (pure) and running them off the loop
    loop.py      the tick: its steps, in order, and the process around them
    beat.py      the watcher's pid and heartbeat, as `status` reads them
    serve.py     `status --json` answered on a unix socket, fresh per request (hosts too)
    statusclient.py  the command's side of it: asks, or says the command must answer itself
"""
