from django.contrib.auth import views as auth_views
from django.urls import include, path

from bihuan.api import api
from bihuan.control import views as control_views
from bihuan.directives import views as directives_views
from bihuan.today import account_views as today_account
from bihuan.today import views as today_views

urlpatterns = [
    path("", today_views.home, name="home"),
    path("today/", include("bihuan.today.urls")),
    path("search/", today_account.search, name="search"),
    path("me/", today_account.profile, name="profile"),
    path("me/language/", today_account.set_language, name="my_language"),
    path("me/logout-everywhere/", today_account.logout_everywhere, name="logout_everywhere"),
    path("households/<int:household_id>/all/", today_account.household_all, name="household_all"),
    path("login/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("directives/", include("bihuan.directives.urls")),
    path("r/<str:token>/", directives_views.confirm, name="confirm"),
    path("", include("bihuan.notify.urls")),
    path("audit/", include("bihuan.register.audit_urls")),
    path("pushes/", include("bihuan.pushes.urls")),
    path("control/", include("bihuan.control.urls")),
    path("p/<str:token>/", control_views.person, name="person"),
    path("", include("bihuan.register.urls")),
]
