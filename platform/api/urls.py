from django.urls import path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularSwaggerView,
)

from . import views
from .root import ApiRoot, RedocView

app_name = "api"
urlpatterns = [
    path("", ApiRoot.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", RedocView.as_view(url_name="api:schema"), name="redoc"),
    path("competitions/", views.CompetitionList.as_view(), name="competition-list"),
    path("competitions/<slug:slug>/", views.CompetitionDetail.as_view(), name="competition"),
    path("competitions/<slug:slug>/join/", views.JoinCompetition.as_view(), name="join"),
    path("competitions/<slug:slug>/leaderboard/", views.Leaderboard.as_view(), name="leaderboard"),
    path("competitions/<slug:slug>/results.csv", views.ResultsCsv.as_view(), name="results-csv"),
    path("submissions/", views.SubmissionList.as_view(), name="submission-list"),
    path("submissions/<int:pk>/", views.SubmissionDetail.as_view(), name="submission"),
    path("submissions/<int:pk>/final/", views.SubmissionFinal.as_view(), name="submission-final"),
]
