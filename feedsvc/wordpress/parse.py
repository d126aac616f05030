"""WXR (WordPress eXtended RSS, RSS 2.0 with wp:, content:, excerpt:, dc:) → typed items.

Parsed safely with lxml: entities are never resolved, nothing is fetched from the network, and
huge_tree stays off (lxml's limits on depth and text size hold). A WXR file has no DOCTYPE, so
any DOCTYPE is refused outright: that is how XXE and billion-laughs payloads fail, with one
line, before any entity could matter. Pure: bytes in, data out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from feedsvc.errors import Invalid

WP_PREFIX = "http://wordpress.org/export/"  # 1.0, 1.1, 1.2: the version is in the URI
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
ZERO_DATE = "0000-00-00 00:00:00"  # WordPress's "no date" (drafts' post_date_gmt)


class WxrError(Invalid):
    """The file is not a WordPress export we can read: one line saying why."""


@dataclass(frozen=True)
class WxrTerm:
    domain: str  # "category" | "post_tag" | others (post_format, custom taxonomies)
    nicename: str
    name: str


@dataclass(frozen=True)
class WxrItem:
    position: int  # 1-based, in file order: how errors name an item
    post_id: str
    guid: str
    title: str
    creator: str  # the author's login
    content: str
    excerpt: str
    post_name: str
    post_type: str
    status: str
    post_date: str  # the blog's local time, "YYYY-MM-DD HH:MM:SS"
    post_date_gmt: str
    terms: tuple[WxrTerm, ...]
    password_protected: bool = False


@dataclass(frozen=True)
class WxrSite:
    title: str
    authors: dict[str, str] = field(default_factory=dict)  # login → display name
    items: tuple[WxrItem, ...] = ()


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_pis=True,
    )


def parse_wxr(data: bytes, where: str) -> WxrSite:
    # What comes before the root element: a DOCTYPE there is refused before lxml sees it.
    root_at = data.find(b"<rss")
    prolog = data[: root_at if root_at >= 0 else 65536]
    if b"<!DOCTYPE" in prolog.upper():
        raise WxrError(
            f"{where}: has a DOCTYPE (entity declarations are refused); a WordPress export has none"
        )
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise WxrError(f"{where}: not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise WxrError(
            f"{where}: has a DOCTYPE (entity declarations are refused); a WordPress export has none"
        )
    channel = root.find("channel")
    if root.tag != "rss" or channel is None or _wp_namespace(root) is None:
        raise WxrError(
            f"{where}: not a WordPress export (no <rss><channel> with the wp: namespace)"
        )
    wp = _wp_namespace(root)
    assert wp is not None
    authors = {
        _text(author, f"{{{wp}}}author_login"): _text(author, f"{{{wp}}}author_display_name")
        for author in channel.iterfind(f"{{{wp}}}author")
    }
    items = tuple(
        _item(position, element, wp)
        for position, element in enumerate(channel.iterfind("item"), start=1)
    )
    return WxrSite(_text(channel, "title"), authors, items)


def _wp_namespace(root: etree._Element) -> str | None:
    for uri in (root.nsmap or {}).values():
        if isinstance(uri, str) and uri.startswith(WP_PREFIX) and not uri.endswith("excerpt/"):
            return uri
    return None


def _excerpt_namespace(wp: str) -> str:
    return wp + "excerpt/"


def _text(parent: etree._Element, tag: str) -> str:
    element = parent.find(tag)
    if element is None or element.text is None:
        return ""
    return str(element.text)


def _item(position: int, element: etree._Element, wp: str) -> WxrItem:
    terms = tuple(
        WxrTerm(
            str(term.get("domain") or ""),
            str(term.get("nicename") or ""),
            (term.text or "").strip(),
        )
        for term in element.iterfind("category")
    )
    return WxrItem(
        position=position,
        post_id=_text(element, f"{{{wp}}}post_id").strip(),
        guid=_text(element, "guid").strip(),
        title=_text(element, "title").strip(),
        creator=_text(element, f"{{{DC}}}creator").strip(),
        content=_text(element, f"{{{CONTENT}}}encoded"),
        excerpt=_text(element, f"{{{_excerpt_namespace(wp)}}}encoded"),
        post_name=_text(element, f"{{{wp}}}post_name").strip(),
        post_type=_text(element, f"{{{wp}}}post_type").strip(),
        status=_text(element, f"{{{wp}}}status").strip(),
        post_date=_text(element, f"{{{wp}}}post_date").strip(),
        post_date_gmt=_text(element, f"{{{wp}}}post_date_gmt").strip(),
        terms=terms,
        password_protected=bool(_text(element, f"{{{wp}}}post_password").strip()),
    )
