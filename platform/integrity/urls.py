from django.urls import path

from . import views

app_name = "integrity"
urlpatterns = [
    path("c/<slug:slug>/organize/integrity/", views.flags_page, name="flags"),
    path("api/competitions/<slug:slug>/integrity/", views.CompetitionFlags.as_view(),
         name="api-flags"),
]
