"""`python -m mosaic.hooks`: kept at this path because running tmux servers call it (their
config was written by an earlier mosaic). The hook itself is `supervise.tmux.hooks`."""

import sys

from mosaic.supervise.tmux.hooks import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
