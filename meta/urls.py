"""Routes of the operations endpoints: ``/meta/cache-stats`` and ``/meta/metrics``."""

from anima_site.http import OptionalSlashRouter
from meta.views import MetaViewSet

router = OptionalSlashRouter()
router.register("meta", MetaViewSet, basename="meta")

urlpatterns = router.urls
