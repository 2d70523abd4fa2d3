"""Benchmarks of the running service: latency (``manage.py benchmark``) and LoCoMo recall
(``manage.py recall_benchmark``). No models; nothing in the service imports this package.

``locomo.py`` is plain Python (no Django) so that ``scripts/offline_recall`` imports it
from any venv; this package's ``__init__`` therefore imports nothing.
"""
