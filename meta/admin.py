"""Admin pages for the service's own records: API keys (secrets never shown), reflections, handshakes."""

from django.contrib import admin, messages
from django.utils import timezone

from meta.models import ApiKey, ConversationReflection, Handshake, MetaReflection
from meta.services.keys import api_key_create


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
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row keeps the audit trail


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MetaReflection)
class MetaReflectionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "namespace", "reflection_type", "conversation_id")
    list_filter = ("reflection_type", "namespace")
    search_fields = ("conversation_id",)


@admin.register(ConversationReflection)
class ConversationReflectionAdmin(ReadOnlyAdmin):
    list_display = ("reflected_at", "namespace", "conversation_id", "context_quality", "continuity_score")
    list_filter = ("namespace", "needed_correction", "had_emergence_moment")
    search_fields = ("conversation_id",)


@admin.register(Handshake)
class HandshakeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "namespace", "expires_at")
    list_filter = ("namespace",)
