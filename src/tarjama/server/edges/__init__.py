"""What sits at the server's edges: tokens, access logs, tracing, metrics, TLS, connection limits."""
