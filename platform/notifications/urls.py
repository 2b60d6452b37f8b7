from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("account/email-preference/", views.email_preference, name="preference"),
]
