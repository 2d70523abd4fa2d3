from rest_framework.routers import SimpleRouter

from memories.views import MemoryViewSet
from memories.views.associations import AssociationViewSet


class OptionalSlashRouter(SimpleRouter):
    """Every route answers with or without its trailing slash."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("memories", MemoryViewSet, basename="memory")
router.register("associations", AssociationViewSet, basename="association")

urlpatterns = router.urls
