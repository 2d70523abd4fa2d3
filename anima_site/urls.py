from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

handler404 = "anima_site.api.not_found_view"
handler500 = "anima_site.api.server_error_view"

urlpatterns = [
    path("api/v1/", include("memories.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    path("", include("django_prometheus.urls")),
]
