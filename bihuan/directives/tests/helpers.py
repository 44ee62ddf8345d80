"""Helpers the tests of this app share (imported, never copied)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bihuan.directives import cap

XSD = cap.SCHEMA


NS = {"cap": cap.NS}


def valid(schema, xml: bytes) -> ET.Element:
    """Assert ``xml`` is a valid CAP 1.2 message; return it parsed."""
    from lxml import etree

    doc = etree.fromstring(xml)
    assert schema.validate(doc), schema.error_log
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(xml)


def text(root: ET.Element, path: str) -> str | None:
    el = root.find(path, NS)
    return None if el is None else el.text
