"""Adapters of the intake service: the directory's log, the column choices' read model."""
