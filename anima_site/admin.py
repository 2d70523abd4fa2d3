"""What every app's admin shares: ``ReadOnlyAdmin``, the page of a table staff read and services write."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff read these; services write them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
