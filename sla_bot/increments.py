"""A counter increment as data (pure), so domain code can say what to count without I/O."""

from __future__ import annotations

from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Increment:
    name: str
    labels: Labels
    value: float = 1.0


def histogram(
    name: str, labels: Labels, value: float, buckets: tuple[float, ...]
) -> list[Increment]:
    """One observation as increments of its (non-cumulative) bucket, `_sum` and `_count`."""
    le = next((b for b in buckets if value <= b), None)
    bound = "+Inf" if le is None else repr(le)
    return [
        Increment(f"{name}_bucket", (*labels, ("le", bound))),
        Increment(f"{name}_sum", labels, value),
        Increment(f"{name}_count", labels),
    ]
