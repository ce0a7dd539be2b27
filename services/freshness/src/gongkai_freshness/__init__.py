"""gongkai freshness service."""
