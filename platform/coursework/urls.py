from django.urls import path

from . import views

app_name = "coursework"
urlpatterns = [
    path("c/<slug:slug>/me/final/<int:pk>/", views.set_final, name="final"),
]
