"""`python -m mosaic.unitexec`: kept at this path because installed unit files call it.
What the units run is `supervise.systemd.unitexec`."""

import sys

from mosaic.supervise.systemd.unitexec import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
