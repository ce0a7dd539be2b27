"""The column catalog and the deadline rule sets, as data shipped with gongkai.

``wenan-2018`` (the notice's Attachment 2) defines the columns every unit's section has and
their deadlines; ``national-2019`` adds the national checking lines. freshness evaluates them;
intake validates a post's column against the same catalog::

    from gongkai.rules import default_catalog
    col = default_catalog().column("normative_documents")
    col.exists_for("township"), default_catalog().kept_by_default(col.code, "township")

Operators load their own files by path; see docs/freshness.md for the format.
"""

# The package names what its two modules name: the values (model) and how files become them
# (loader).
from gongkai.rules import loader, model
from gongkai.rules.loader import *  # noqa: F403
from gongkai.rules.model import *  # noqa: F403

__all__ = [*loader.__all__, *model.__all__]
