"""The fleet's private tmux server: the one client every call goes through (`client`), the
server's config and hooks (`server`), reading panes and screens (`panes`), transcripts
(`transcript`)."""
