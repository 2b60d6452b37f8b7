from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("web.urls")),
]

# JSON under /api/ (and to JSON clients), the site's pages elsewhere.
handler400 = "web.errors.bad_request"
handler404 = "web.errors.not_found"
