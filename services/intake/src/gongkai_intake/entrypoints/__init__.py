"""How commands reach intake: HTTP routes, NATS request/reply, the operator's command line."""
