"""The names the console shows for the codes in the log, in the notice's own terms.

Written in Chinese and marked with ``N_`` so that ``pybabel extract`` finds them; a page
translates them with its language's ``gettext`` when it shows one (``label``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gongkai.vocabulary import (
    CASE_STATUS,
    COLUMN_STATES,
    DECISIONS,
    FINDING_HOW,
    FINDING_KINDS,
    FINDING_STATUS,
    INTEGRITY_CHECKS,
    N_,
    ROLES,
    SEVERITIES,
    STEPS,
    SUPERVISION_OUTCOMES,
    VIOLATION_KINDS,
)

# The codes every command and page names alike live in gongkai.vocabulary (the short names
# are the ones the console's routes use); the console translates those same Chinese names
# through its catalogue. Only LEVELS, the overview's own notion, is the console's.
KINDS = VIOLATION_KINDS
OUTCOMES = SUPERVISION_OUTCOMES
CHECKS = INTEGRITY_CHECKS
LEVELS: Mapping[str, str] = {"ok": N_("正常"), "warn": N_("预警"), "veto": N_("已达否决线")}


#: The tables a page names codes with, by the name the templates call them by.
NAMES: Mapping[str, Mapping[str, str]] = {
    "kind_name": KINDS,
    "severity_name": SEVERITIES,
    "role_name": ROLES,
    "step_name": STEPS,
    "decision_name": DECISIONS,
    "status_name": CASE_STATUS,
    "level_name": LEVELS,
    "state_name": COLUMN_STATES,
    "finding_kind": FINDING_KINDS,
    "finding_status": FINDING_STATUS,
    "finding_how": FINDING_HOW,
    "check_name": CHECKS,
}


def label(table: Mapping[str, str], code: str | None, gettext: Callable[[str], str]) -> str:
    """The name of ``code`` in the page's language; an unknown code shows as itself."""
    if code is None:
        return ""
    name = table.get(code)
    return gettext(name) if name is not None else code
