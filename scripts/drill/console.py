"""Output of a drill run: one phase header per phase, aligned key/value lines, wall-clock timestamps."""

import time
from datetime import datetime, timezone

T0 = time.monotonic()


class DrillError(Exception):
    """A drill step could not be done; the message says what is missing and where to look."""


def now_utc():
    return datetime.now(timezone.utc)


def clock(t=None):
    t = t or now_utc()
    return t.astimezone(timezone.utc).strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def elapsed():
    return time.monotonic() - T0


def phase(title):
    print(f"\n== {title}  (drill +{elapsed():.1f}s)", flush=True)


def say(msg=""):
    print(msg, flush=True)


def kv(label, value):
    say(f"  {label:<28} {value}")
