"""Routes of reflections and handshakes: under ``/meta/`` (SPEC §3) and ``/reflection/``.

Two routers share the ``meta`` prefix (this one and ``meta.urls``); their actions differ.
"""

from anima_site.http import OptionalSlashRouter
from reflections.views import ConversationReflectionViewSet, HandshakeViewSet, MetaReflectionViewSet

router = OptionalSlashRouter()
router.register("meta", MetaReflectionViewSet, basename="meta")
router.register("meta", HandshakeViewSet, basename="handshake")
router.register("reflection", ConversationReflectionViewSet, basename="reflection")

urlpatterns = router.urls
