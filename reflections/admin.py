"""Admin pages for reflections and handshakes: read-only records of the service's own use."""

from django.contrib import admin

from anima_site.admin import ReadOnlyAdmin
from reflections.models import ConversationReflection, Handshake, MetaReflection


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
