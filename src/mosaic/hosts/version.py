"""Which mosaic on a host can serve this controller: the one compatibility rule.

Controller and host exchange command lines and JSON documents, so they must agree on
commands, flags and fields: the same major.minor release (0.1.x with 0.1.y). The
controller passes its version with every call (`mosaic fleet --controller-version V ...`),
and the host's mosaic refuses before doing anything when the rule fails; a mosaic too old
to know the flag fails on it, which the controller reads as "too old".
"""

from __future__ import annotations

import re

from mosaic import __version__
from mosaic.errors import ConfigError

PACKAGE = "mosaic-fleet"
# The start of the host's refusal, which the controller recognises.
INCOMPATIBLE = "incompatible mosaic version"


def release(version: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def compatible(controller: str, here: str = __version__) -> bool:
    wanted = release(controller)
    return wanted is not None and wanted == release(here)


def install_hint(controller: str = __version__) -> str:
    """What to install on a host for this controller."""
    rel = release(controller)
    series = f"{rel[0]}.{rel[1]}.*" if rel else controller
    return f"pip install '{PACKAGE}=={series}'"


def check_controller(controller: str) -> None:
    """On the host: refuse a controller of another release, before anything runs."""
    if not compatible(controller):
        raise ConfigError(
            f"{INCOMPATIBLE}: mosaic {__version__} here, the controller runs {controller}; "
            f"install the controller's release here ({install_hint(controller)})"
        )
