"""Serving: the web server, its endpoints, TLS and auth, and the /metrics exposition."""
