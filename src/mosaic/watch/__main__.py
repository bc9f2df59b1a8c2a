"""`python -m mosaic.watch`: the fleet's watcher process (see `loop`)."""

import sys

from mosaic.watch.loop import main

if __name__ == "__main__":
    sys.exit(main())
