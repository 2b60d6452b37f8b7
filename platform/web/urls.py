from django.urls import path

from . import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("c/<slug:slug>/", views.leaderboard, name="leaderboard"),
    path("c/<slug:slug>/panel/", views.leaderboard_panel, name="leaderboard-panel"),
    path("c/<slug:slug>/me/", views.student, name="student"),
    path("c/<slug:slug>/me/panel/", views.student_panel, name="student-panel"),
]
