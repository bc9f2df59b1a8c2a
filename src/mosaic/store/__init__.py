"""The fleet database (`<home>/fleet/fleet.db`): durable state that several processes read
and write — per-agent supervision records, the recorded supervisor, events, the outbox.

SQLite in WAL mode: readers never block the writer, every write is one short transaction,
and a `busy_timeout` makes writers queue instead of failing with "database is locked".
"""
