"""Typing into agents with proof: `delivery` pastes and submits under the agent's send lock,
`judge` decides from the screen whether the agent took it (pure), `outcome` holds the
results and their exit codes."""
