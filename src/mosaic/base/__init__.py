"""OS plumbing that knows nothing of fleets: atomic files (`fs`), kernel file locks
(`flock`), process trees from /proc (`procs`)."""
