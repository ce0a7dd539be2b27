"""gongkai shared package: event contracts, event log, projections, runtime, calendar."""

__version__ = "0.1.0"
