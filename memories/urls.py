from rest_framework.routers import SimpleRouter

from memories.views import MemoryViewSet
from memories.views.associations import AssociationViewSet
from memories.views.namespaces import NamespaceViewSet


class OptionalSlashRouter(SimpleRouter):
    """Every route answers with or without its trailing slash."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("memories", MemoryViewSet, basename="memory")
router.register("associations", AssociationViewSet, basename="association")
router.register("namespaces", NamespaceViewSet, basename="namespace")

urlpatterns = router.urls
