from django.contrib.auth import views as auth_views
from django.urls import include, path

from bihuan import login as core_login
from bihuan import second_factor
from bihuan.api import api
from bihuan.checkpoints import views as checkpoint_views
from bihuan.control import views as control_views
from bihuan.directives import views as directives_views
from bihuan.forces.urls import public as forces_public
from bihuan.register import token_views
from bihuan.today import account_views as today_account
from bihuan.today import views as today_views

urlpatterns = [
    path("", today_views.home, name="home"),
    path("today/", include("bihuan.today.urls")),
    path("search/", today_account.search, name="search"),
    path("me/", today_account.profile, name="profile"),
    path("me/language/", today_account.set_language, name="my_language"),
    path("me/tokens/", token_views.tokens, name="my_tokens"),
    path("me/tokens/<int:token_id>/revoke/", token_views.revoke_token, name="my_token_revoke"),
    path("households/<int:household_id>/all/", today_account.household_all, name="household_all"),
    path("login/", core_login.ThrottledLoginView.as_view(), name="login"),
    path("login/verify/", second_factor.verify, name="login_verify"),
    path("me/2fa/", second_factor.enrol, name="my_2fa"),
    path("logout/everywhere/", core_login.logout_everywhere, name="logout_everywhere"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("directives/", include("bihuan.directives.urls")),
    path("r/<str:token>/", directives_views.confirm, name="confirm"),
    path("", include("bihuan.notify.urls")),
    path("audit/", include("bihuan.register.audit_urls")),
    path("pushes/", include("bihuan.pushes.urls")),
    path("control/", include("bihuan.control.urls")),
    path("inspections/", include("bihuan.inspections.urls")),
    path("p/<str:token>/", control_views.person, name="person"),
    path("checkpoints/", include("bihuan.checkpoints.urls")),
    path("report/", checkpoint_views.self_report, name="self_report"),
    path("report/r/<str:token>/", checkpoint_views.self_report_receipt, name="self_report_receipt"),
    path("s/<str:token>/", checkpoint_views.screen_link, name="screen_link"),
    path("forces/", include("bihuan.forces.urls")),
    path("f/", include(forces_public)),
    path("", include("bihuan.register.urls")),
]
