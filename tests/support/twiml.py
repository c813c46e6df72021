"""Read TwiML answers the way Twilio does: parse the XML, look at verbs and attributes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from httpx import Response


def parse(response: Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    return root


def message_texts(response: Response) -> list[str]:
    return [m.text or "" for m in parse(response).findall("Message")]


def said(root: ET.Element) -> list[str]:
    """Every <Say> text, in order, wherever it is (top level or inside <Gather>)."""
    return [say.text or "" for say in root.iter("Say")]
