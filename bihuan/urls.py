from django.contrib.auth import views as auth_views
from django.urls import include, path

from bihuan.api import api
from bihuan.control import views as control_views
from bihuan.directives import views as directives_views
from bihuan.forces.urls import public as forces_public
from bihuan.register import views as register_views

urlpatterns = [
    path("", register_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("directives/", include("bihuan.directives.urls")),
    path("r/<str:token>/", directives_views.confirm, name="confirm"),
    path("", include("bihuan.notify.urls")),
    path("audit/", include("bihuan.core.urls")),
    path("pushes/", include("bihuan.pushes.urls")),
    path("control/", include("bihuan.control.urls")),
    path("p/<str:token>/", control_views.person, name="person"),
    path("forces/", include("bihuan.forces.urls")),
    path("f/", include(forces_public)),
    path("", include("bihuan.register.urls")),
]
