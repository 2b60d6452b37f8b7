from django.urls import path

from . import views

app_name = "results"
urlpatterns = [
    path("c/<slug:slug>/results/", views.results, name="results"),
    path("c/<slug:slug>/results/grades.csv", views.grades_csv, name="grades"),
]
