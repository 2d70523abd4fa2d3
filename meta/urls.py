from memories.urls import OptionalSlashRouter
from meta.views import MetaViewSet, ReflectionViewSet

router = OptionalSlashRouter()
router.register("meta", MetaViewSet, basename="meta")
router.register("reflection", ReflectionViewSet, basename="reflection")

urlpatterns = router.urls
