"""The column catalog and the deadline rule sets, as data shipped with gongkai.

``wenan-2018`` (the notice's Attachment 2) defines the columns every unit's section has and
their deadlines; ``national-2019`` adds the national checking lines. freshness evaluates them;
intake validates a post's column against the same catalog::

    from gongkai.rules import default_catalog
    col = default_catalog().column("normative_documents")
    col.exists_for("township"), default_catalog().kept_by_default(col.code, "township")

Operators load their own files by path; see docs/freshness.md for the format.
"""

from gongkai.rules.loader import (
    CATALOG_RULE_SET,
    DATA_DIR,
    DEFAULT_RULE_SETS,
    RuleSetError,
    default_catalog,
    load_rule_sets,
    shipped_rule_sets,
)
from gongkai.rules.model import (
    RULE_KINDS,
    UNIT_KINDS,
    Catalog,
    Column,
    Group,
    MonthDay,
    Period,
    Rule,
    RuleKind,
    RuleSet,
    SiteLine,
    Text,
)

__all__ = [
    "CATALOG_RULE_SET",
    "DATA_DIR",
    "DEFAULT_RULE_SETS",
    "RULE_KINDS",
    "UNIT_KINDS",
    "Catalog",
    "Column",
    "Group",
    "MonthDay",
    "Period",
    "Rule",
    "RuleKind",
    "RuleSet",
    "RuleSetError",
    "SiteLine",
    "Text",
    "default_catalog",
    "load_rule_sets",
    "shipped_rule_sets",
]
