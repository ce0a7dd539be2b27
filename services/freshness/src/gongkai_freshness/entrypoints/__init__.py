"""Entry points: HTTP routes and the ``gongkai freshness`` commands."""
