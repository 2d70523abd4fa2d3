"""``manage.py ensure_superuser``: the first staff user from the environment, idempotently.

Reads ``ANIMA_ADMIN_USERNAME``, ``ANIMA_ADMIN_PASSWORD`` and ``ANIMA_ADMIN_EMAIL``
(settings). Without a username it does nothing. When the user does not exist it is
created as an active staff superuser; when it exists it is left as it is (a password
changed in the admin is not overwritten at the next start) unless
``--update-password`` is given. The password is never printed.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

MESSAGE_NO_USERNAME = "ANIMA_ADMIN_USERNAME is not set: no admin user created."
MESSAGE_NO_PASSWORD = "ANIMA_ADMIN_PASSWORD must be set to create the admin user {username!r}."
MESSAGE_CREATED = "Admin user {username!r} created (staff, superuser)."
MESSAGE_EXISTS = "Admin user {username!r} exists; left unchanged."
MESSAGE_PASSWORD_UPDATED = "Admin user {username!r} exists; password set from ANIMA_ADMIN_PASSWORD."
MESSAGE_NOT_STAFF = "Warning: user {username!r} exists but is not an active staff superuser; it cannot use /admin/."


class Command(BaseCommand):
    help = "Create the admin superuser from ANIMA_ADMIN_USERNAME/PASSWORD/EMAIL if it does not exist yet."

    def add_arguments(self, parser):
        parser.add_argument(
            "--update-password",
            action="store_true",
            help="Also set the password of an existing user from ANIMA_ADMIN_PASSWORD.",
        )

    def handle(self, *args, update_password: bool = False, **options):
        username = settings.ANIMA_ADMIN_USERNAME
        password = settings.ANIMA_ADMIN_PASSWORD
        if not username:
            self.stdout.write(MESSAGE_NO_USERNAME)
            return
        User = get_user_model()
        user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            if not password:
                raise CommandError(MESSAGE_NO_PASSWORD.format(username=username))
            try:
                with transaction.atomic():
                    User._default_manager.create_superuser(
                        **{User.USERNAME_FIELD: username}, email=settings.ANIMA_ADMIN_EMAIL or "", password=password
                    )
            except IntegrityError:  # created by a concurrent run
                user = User._default_manager.get(**{User.USERNAME_FIELD: username})
            else:
                self.stdout.write(self.style.SUCCESS(MESSAGE_CREATED.format(username=username)))
                return
        if update_password:
            if not password:
                raise CommandError(MESSAGE_NO_PASSWORD.format(username=username))
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(MESSAGE_PASSWORD_UPDATED.format(username=username))
        else:
            self.stdout.write(MESSAGE_EXISTS.format(username=username))
        if not (user.is_active and user.is_staff and user.is_superuser):
            self.stderr.write(MESSAGE_NOT_STAFF.format(username=username))
