"""ai-cost-exporter: AI providers' organization usage and cost as Prometheus metrics."""

__version__ = "0.1.0"
