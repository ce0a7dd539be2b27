"""gongkai intake service."""
