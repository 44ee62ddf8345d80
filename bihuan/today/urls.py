from django.urls import path

from . import views

app_name = "today"

urlpatterns = [
    path("board/", views.board_fragment, name="board"),
    path("wall/", views.wall, name="wall"),
    path("mark/", views.mark, name="mark"),
]
