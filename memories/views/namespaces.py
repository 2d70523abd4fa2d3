"""``POST /api/v1/namespaces/purge``: remove everything of the request's namespace (admin scope)."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.tenancy import request_namespace
from memories import schema
from memories.serializers import NamespacePurgeInput
from memories.services.forgetting import namespace_purge
from memories.views.core import validated


class NamespaceViewSet(viewsets.ViewSet):
    action_scopes = {"purge": "admin"}

    @extend_schema(request=NamespacePurgeInput, responses=schema.NAMESPACE_PURGE, summary="Purge a whole namespace")
    @action(detail=False, methods=["post"], url_path="purge")
    def purge(self, request):
        body = validated(NamespacePurgeInput, request.data)
        namespace = request_namespace(request)
        if body["confirm"] != namespace:
            raise exceptions.ValidationError(
                {"confirm": [f"Type the namespace being purged ({namespace!r}) to confirm; nothing was removed."]}
            )
        counts = namespace_purge(namespace=namespace)
        return success(request, {"namespace": namespace, "counts": counts.as_dict()})
