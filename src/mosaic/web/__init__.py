"""The web dashboard (`mosaic fleet web`): the server and its guard (server.py, security.py,
token.py), the API's calls into the library (actions.py), the live feed (hub.py), the
screen converter (sgr.py) and the page itself (static/: no build step, no CDN)."""
