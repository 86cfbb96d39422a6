"""Organisation of a sender, from its mail domain (or a parent domain)."""

from __future__ import annotations

from collections.abc import Mapping

UNKNOWN = "unknown"

# Example organisations of the design; deployments override them in config.
DEFAULT_ORGANISATIONS: Mapping[str, str] = {
    "eksote.fi": "etela-karjala",
    "lappeenranta.fi": "etela-karjala",
    "imatra.fi": "etela-karjala",
    "siunsote.fi": "siun-sote",
    "pohjois-karjala.fi": "pohjois-karjala",
    "joensuu.fi": "pohjois-karjala",
    "edu.joensuu.fi": "pohjois-karjala-edu",
    "pkky.fi": "pohjois-karjala-edu",
}


def organisation_for(domain: str, domains: Mapping[str, str]) -> str:
    """Longest matching suffix wins, so ``edu.joensuu.fi`` beats ``joensuu.fi``."""
    labels = domain.lower().strip(".").split(".")
    for start in range(len(labels)):
        candidate = ".".join(labels[start:])
        if candidate in domains:
            return domains[candidate]
    return UNKNOWN
