"""``POST /api/v1/namespaces/purge``: remove everything of the request's namespace (admin scope)."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.http import validated
from anima_site.openapi import api_responses
from anima_site.tenancy import request_namespace
from memories.serializers.namespaces import NamespacePurged, NamespacePurgeInput
from memories.services.forgetting import namespace_purge


PURGE_RESPONSES = api_responses({200: ("NamespacePurgeResult", NamespacePurged())}, body=True)


class NamespaceViewSet(viewsets.ViewSet):
    action_scopes = {"purge": "admin"}

    @extend_schema(request=NamespacePurgeInput, responses=PURGE_RESPONSES, summary="Purge a whole namespace")
    @action(detail=False, methods=["post"], url_path="purge")
    def purge(self, request):
        body = validated(NamespacePurgeInput, request.data)
        namespace = request_namespace(request)
        if body["confirm"] != namespace:
            raise exceptions.ValidationError(
                {"confirm": [f"Type the namespace being purged ({namespace!r}) to confirm; nothing was removed."]}
            )
        counts = namespace_purge(namespace=namespace)
        return success(request, NamespacePurged({"namespace": namespace, "counts": counts.as_dict()}).data)
