"""gongkai review service."""
