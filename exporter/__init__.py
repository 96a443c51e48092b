"""ndr-exporter: counts SMTP status codes in mail-server logs for Prometheus.

The pipeline, one stage a module, data flowing one way:
source (exporter.sources) -> parser (exporter.parsers) -> classifier
(exporter.classifier) -> metrics (exporter.metrics) -> HTTP (exporter.web).
"""

__version__ = "0.1.0"
