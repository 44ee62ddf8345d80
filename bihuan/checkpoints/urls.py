from django.urls import path

from . import views

app_name = "checkpoints"

urlpatterns = [
    path("", views.checkpoint_list, name="list"),
    path("new/", views.checkpoint_create, name="create"),
    path("<int:checkpoint_id>/register/", views.register, name="register"),
    path("<int:checkpoint_id>/registrations/", views.registrations, name="registrations"),
    path("destinations/", views.destinations, name="destinations"),
    path("report/", views.day_report, name="report"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("campaigns/<int:campaign_id>/", views.campaign, name="campaign"),
    path("campaigns/<int:campaign_id>/ledger.xlsx", views.campaign_xlsx, name="campaign_xlsx"),
    path("campaigns/<int:campaign_id>/households/<int:household_id>/", views.screen, name="screen"),
    path("changes/<int:change_id>/decide/", views.decide_change, name="decide_change"),
]
