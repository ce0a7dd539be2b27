"""Entry points: HTTP routes (the CLI is gongkai_freshness.cli)."""
