"""Admin page for API keys: made with the secret shown once, revoked, never deleted."""

from django.contrib import admin, messages

from keys.models import ApiKey
from keys.services import api_key_create, api_keys_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "namespace", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope", "namespace", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "namespace")
    fields = ("name", "namespace", "scope", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, secret = api_key_create(name=obj.name, namespace=obj.namespace, scope=obj.scope)
        obj.pk, obj.prefix, obj.created_at = key.pk, key.prefix, key.created_at
        self.message_user(request, f"The key is shown only now — copy it: {secret}", messages.WARNING)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        count = api_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {count} key(s).")

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row keeps the audit trail
