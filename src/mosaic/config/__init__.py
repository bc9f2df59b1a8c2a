"""What the fleet should be: where files live (`locate`, `paths`), the roster model
(`roster`), reading and checking it (`load`, `checker`, `yamlio`, `rostercache`), editing
it (`rosteredit`, `presets`), and the runtime registry (`runtimes`, `programs`)."""
