"""Settings dataclasses built from YAML/JSON sections: an unknown key is an error, not ignored."""

from __future__ import annotations

import dataclasses


def from_known_keys(cls, d: dict, what: str):
    """``cls(**d)``, refusing keys ``cls`` has no field for (a typo must not pass silently)."""
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)}")
    return cls(**d)
