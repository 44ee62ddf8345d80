"""``{% load notify %}``: ``{% unread_count user %}`` prints the number of unread inbox items;
``{% inbox_link %}`` renders a link to the inbox with that number as a badge (for the header)."""

from django import template

from bihuan.notify.inbox import unread_count as _unread_count

register = template.Library()


@register.simple_tag
def unread_count(user) -> int:
    return _unread_count(user)


@register.inclusion_tag("notify/_inbox_link.html", takes_context=True)
def inbox_link(context) -> dict:
    return {"unread": _unread_count(context.get("user"))}
