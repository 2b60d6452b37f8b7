from django.urls import path

from . import views

app_name = "teams"
urlpatterns = [
    path("c/<slug:slug>/me/team/", views.team_action, name="action"),
]
