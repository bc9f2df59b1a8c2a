"""Reading an agent's screen: pure functions from a captured pane to "idle / busy / awaiting
approval" and "what sits in the input". `status`, `send`, `approve` and the watcher all use
this one definition."""
