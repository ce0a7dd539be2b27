"""The runtime: settings, clock, logging, HTTP helpers, the service base and the host."""
