"""Routes of the memories app: ``/memories/``, ``/associations/``, ``/namespaces/``."""

from anima_site.http import OptionalSlashRouter
from memories.views.associations import AssociationViewSet
from memories.views.memories import MemoryViewSet
from memories.views.namespaces import NamespaceViewSet

router = OptionalSlashRouter()
router.register("memories", MemoryViewSet, basename="memory")
router.register("associations", AssociationViewSet, basename="association")
router.register("namespaces", NamespaceViewSet, basename="namespace")

urlpatterns = router.urls
