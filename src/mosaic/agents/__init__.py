"""One agent's life: launching its runtime (`launch`), stopping its process tree
(`teardown`), its supervision record (`state`), whether it is alive (`liveness`) and the
fleet's status document (`status`)."""
