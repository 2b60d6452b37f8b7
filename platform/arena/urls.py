from django.contrib import admin
from django.urls import include, path
from enrollment.urls import password_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    *password_urls,  # the site's own look for Django's password reset views
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("enrollment.urls")),
    path("", include("organizer.urls")),
    path("", include("results.urls")),
    path("", include("coursework.urls")),
    path("", include("teams.urls")),
    path("", include("notifications.urls")),
    path("", include("integrity.urls")),
    path("", include("web.urls")),
]

# JSON under /api/ (and to JSON clients), the site's pages elsewhere.
handler400 = "web.errors.bad_request"
handler404 = "web.errors.not_found"
