"""The benchmarks app: only management commands (``benchmark``, ``recall_benchmark``), no models."""

from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    name = "benchmarks"
