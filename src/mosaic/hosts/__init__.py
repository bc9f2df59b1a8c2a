"""Agents on other machines, reached over plain OpenSSH (docs/hosts.md).

    ssh.py         the transport: `ssh` from PATH, one multiplexed connection per host
    remote.py      `mosaic fleet ...` on a host; its failures as HostError
    version.py     which host release can serve this controller
    hostroster.py  a host's part of the roster: cut here, validated and written there
    route.py       the one routing mechanism every command uses: split by machine, run
                   each machine's part in parallel (bounded), collect
    merge.py       the machines' status answers as one (pure)
    sending.py     `send` across machines: nothing typed anywhere unless all can take it
    outboxing.py   the outbox across machines: stored on each agent's machine, lists merged,
                   `HOST:N` ids routed
    prefetch.py    `status`: each host's call started before click loads

Each host supervises its own agents with its own supervisor, so a lost connection stops
nothing; the controller only starts, stops, asks and types, one SSH round trip at a time.
"""
