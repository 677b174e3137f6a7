"""How a metric column is headed: display name and direction from the metric vocabulary
(:mod:`metrics.vocabulary`), the protocol label from what the engine computed (the ``label`` column of the
results), and whether a backbone is a substitute (an in-domain or proxy network standing in for the
published one). Nothing here re-declares what a metric is.
"""

from __future__ import annotations

import re

from metrics.vocabulary import spec

# Names of the published networks; anything matching SUBSTITUTE_PATTERN is a stand-in for one of them.
SUBSTITUTE_PATTERN = re.compile(r"(synth|proxy|in-domain|indomain|substitute|random|toy|tiny|dummy)", re.IGNORECASE)
SUBSTITUTE_NOTE = "substitute backbone (in-domain/proxy network, not the published one): not comparable with published numbers"


def is_substitute(backbone: str, declared: frozenset[str] | set[str] = frozenset()) -> bool:
    """A backbone is a substitute when its name says so or a cell's provenance declares it one."""
    return bool(backbone) and (backbone in declared or bool(SUBSTITUTE_PATTERN.search(backbone)))


def column_label(metric: str, backbone: str, substitute: bool, label: str = "") -> str:
    """``ACC ↑ [synth-cnn (substitute), 5-way top-1]``: name, direction, backbone, and the computed protocol."""
    s = spec(metric)
    parts = []
    if backbone:
        parts.append(f"{backbone} (substitute)" if substitute else backbone)
    if label:
        parts.append(label)
    return f"{s.display} {s.arrow} [{', '.join(parts)}]" if parts else f"{s.display} {s.arrow}"
