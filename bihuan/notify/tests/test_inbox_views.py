import pytest
from django.template import Context, Template
from django.urls import reverse

from bihuan.core.models import AuditEntry
from bihuan.notify.inbox import unread_count
from bihuan.notify.models import Channel, InboxItem
from bihuan.notify.outbox import enqueue
from bihuan.notify.tasks import deliver
from conftest import login


@pytest.fixture
def inboxes(district):
    """Two messages for grid worker A, one for villager representative B, all delivered."""
    grid_a, rep_b = district.users["grid_a"], district.users["rep_b"]
    enqueue(Channel.INBOX, key="a1", subject="催办：住户核查", body="第一行\n第二行", user=grid_a)
    enqueue(Channel.INBOX, key="a2", subject="新指令：消杀", body="", user=grid_a)
    enqueue(Channel.INBOX, key="b1", subject="别人的消息", body="", user=rep_b)
    deliver("w1")
    return grid_a, rep_b


def test_inbox_url_is_inbox():
    assert reverse("notify:inbox") == "/inbox/"


def test_inbox_requires_login(client):
    response = client.get("/inbox/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_inbox_shows_only_the_users_own_messages_newest_first(client, inboxes):
    grid_a, _rep_b = inboxes
    page = login(client, grid_a).get("/inbox/").content.decode()
    assert page.index("新指令：消杀") < page.index("催办：住户核查")
    assert "别人的消息" not in page
    assert "第一行<br>第二行" in page
    assert page.count('data-testid="inbox-item"') == 2
    assert page.count('class="unread"') == 2


def test_marking_one_read(client, inboxes):
    grid_a, _rep_b = inboxes
    item = InboxItem.objects.get(message__idempotency_key="a1")
    response = login(client, grid_a).post("/inbox/read/", {"item": item.pk})
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    item.refresh_from_db()
    assert item.read_at is not None
    assert unread_count(grid_a) == 1
    assert AuditEntry.objects.filter(action="notify.mark_read", actor=grid_a).count() == 1


def test_marking_all_read(client, inboxes):
    grid_a, rep_b = inboxes
    login(client, grid_a).post("/inbox/read/", {"all": "1"})
    assert unread_count(grid_a) == 0
    assert unread_count(rep_b) == 1  # someone else's inbox is untouched
    page = client.get("/inbox/").content.decode()
    assert page.count('class="read"') == 2 and 'data-testid="mark-all-read"' not in page


def test_a_user_cannot_mark_someone_elses_message_read(client, inboxes):
    grid_a, rep_b = inboxes
    theirs = InboxItem.objects.get(user=rep_b)
    login(client, grid_a).post("/inbox/read/", {"item": theirs.pk})
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_read_needs_post_and_a_target(client, inboxes):
    grid_a, _rep_b = inboxes
    login(client, grid_a)
    assert client.get("/inbox/read/").status_code == 405
    assert client.post("/inbox/read/", {}).status_code == 400
    assert client.post("/inbox/read/", {"item": "x"}).status_code == 400


def test_unread_count_for_the_header(inboxes, rf):
    grid_a, _rep_b = inboxes
    assert unread_count(grid_a) == 2
    html = Template("{% load notify %}[{% unread_count user %}] {% inbox_link %}").render(
        Context({"user": grid_a}))
    assert html.startswith("[2] ") and 'href="/inbox/"' in html and 'data-testid="inbox-unread">2<' in html


def test_empty_inbox(client, district):
    page = login(client, district.users["commander"]).get("/inbox/").content.decode()
    assert 'data-testid="inbox-empty"' in page
