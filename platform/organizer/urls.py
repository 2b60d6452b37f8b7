from django.urls import path

from . import views

app_name = "organizer"
urlpatterns = [
    path("organize/new/", views.new_competition, name="new"),
    path("c/<slug:slug>/organize/", views.edit, name="edit"),
    path("c/<slug:slug>/organize/tracks/new/", views.track, name="new-track"),
    path("c/<slug:slug>/organize/tracks/<slug:track_slug>/", views.track, name="track"),
    path("c/<slug:slug>/organize/tracks/<slug:track_slug>/rescore/", views.rescore_track,
         name="rescore"),
    path("c/<slug:slug>/organize/submissions/", views.submissions, name="submissions"),
    path("c/<slug:slug>/organize/submissions/<int:pk>/", views.submission, name="submission"),
    path("c/<slug:slug>/organize/extensions/", views.extensions, name="extensions"),
]
