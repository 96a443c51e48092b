"""Shared test helpers: run the real exporter process and a real Prometheus server."""
