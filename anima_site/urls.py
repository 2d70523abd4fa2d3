"""The site's routes: the one module that ties the apps together (it may import any of them)."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from meta.health import health_view
from meta.metrics import metrics_view

handler400 = "anima_site.api.bad_request_view"
handler403 = "anima_site.api.forbidden_view"
handler404 = "anima_site.api.not_found_view"
handler500 = "anima_site.api.server_error_view"

urlpatterns = [
    path("api/v1/", include("memories.urls")),
    path("api/v1/", include("reflections.urls")),
    path("api/v1/", include("meta.urls")),
    re_path(r"^health/?$", health_view, name="health"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
]
