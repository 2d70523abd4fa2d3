"""``manage.py api_key create|list|revoke``: manage API keys. The secret is printed once."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from keys.models import ApiKey, Scope
from keys.services import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = "Create, list or revoke API keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="make a key and print it once")
        create.add_argument("--name", required=True)
        create.add_argument("--namespace", default="default")
        create.add_argument("--scope", choices=Scope.values, default=Scope.WRITE)
        sub.add_parser("list", help="list keys (never their secrets)")
        revoke = sub.add_parser("revoke", help="revoke a key by its prefix")
        revoke.add_argument("prefix")

    def handle(self, *args, action, **options):
        if action == "create":
            try:
                key, secret = api_key_create(name=options["name"], namespace=options["namespace"], scope=options["scope"])
            except ValidationError as error:
                raise CommandError(error.messages[0]) from None
            self.stderr.write(f"created {key} — the key is shown only now:")
            self.stdout.write(secret)
        elif action == "list":
            for key in ApiKey.objects.order_by("created_at"):
                state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                self.stdout.write(
                    f"{key.prefix}  {key.name:<24} {key.namespace:<16} {key.scope:<6} {state:<18} last used {used}"
                )
        elif action == "revoke":
            if not api_key_revoke(prefix=options["prefix"]):
                raise CommandError(f"no active key with prefix {options['prefix']!r}")
            self.stdout.write(f"revoked {options['prefix']}")
