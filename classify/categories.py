"""Category ids of DESIGN.md: a contract between rules, reports and the store.

Kept as data here so the loader can reject a typo like ``hr.taxes`` before
it silently routes payroll mail into a queue that nobody watches.
"""

from __future__ import annotations

SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "it": (
        "it.advice",
        "it.software_install",
        "it.incident",
        "it.device_fault",
        "it.password",
        "it.access",
    ),
    "hr": (
        "hr.certificate",
        "hr.tax",
        "hr.pay_question",
        "hr.deduction",
        "hr.payroll_material",
        "hr.supervisor_change",
        "hr.employment_change",
        "hr.work_certificate",
    ),
    "order": (
        "order.workstation",
        "order.mobile",
        "order.license",
        "order.subscription",
        "order.peripheral",
        "order.oc_account",
        "order.firewall",
        "order.lifecycle",
    ),
}

CATEGORIES: tuple[str, ...] = tuple(SUBCATEGORIES)
ALL_SUBCATEGORIES: frozenset[str] = frozenset(s for subs in SUBCATEGORIES.values() for s in subs)
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
LANGUAGES: tuple[str, ...] = ("fi", "sv", "en")


def category_of(subcategory: str) -> str:
    """``hr.tax`` -> ``hr``; a bare category id is its own category."""
    return subcategory.split(".", 1)[0]
