"""gongkai accountability service."""
