"""API keys: the ``ApiKey`` model, its services, DRF authentication, scope and throttle.

Imports only the foundation (``anima_site``); every other app may import it.
"""
