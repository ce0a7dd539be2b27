"""Event payload contracts, one module per owning service. Importing this package registers all."""

from gongkai.events.contracts import accountability, freshness, intake, review

__all__ = ["accountability", "freshness", "intake", "review"]
