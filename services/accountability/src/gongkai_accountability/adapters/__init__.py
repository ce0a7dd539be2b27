"""Adapters: the SQL read model, the log."""
