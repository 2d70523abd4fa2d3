"""``manage.py ensure_local_key``: on first run, make a key for this machine and save it.

The key (admin scope, namespace ``default``) is written to ``ANIMA_DATA_DIR/local-api-key``
(mode 600) so that the README's curl examples can read it. Later runs find the file and
the key and do nothing; a revoked or deleted key is replaced.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand

from keys.models import Scope
from keys.services import api_key_authenticate, api_key_create

LOCAL_KEY_NAME = "local (made by serve)"


class Command(BaseCommand):
    help = "Make the first local API key and save it under ANIMA_DATA_DIR/local-api-key."

    def handle(self, *args, **options):
        path = settings.ANIMA_DATA_DIR / "local-api-key"
        if path.exists() and api_key_authenticate(path.read_text().strip()) is not None:
            self.stdout.write(f"==> API key: {path}")
            return
        _, secret = api_key_create(name=LOCAL_KEY_NAME, namespace=settings.ANIMA_DEFAULT_NAMESPACE, scope=Scope.ADMIN)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secret + "\n")
        self.stdout.write(f"==> made a local API key (admin scope) and saved it in {path}")
