"""What goes in a feed: category + posts → a plain, typed, format-neutral document.

Pure: takes rows already loaded, returns data. How the XML is written is render.py's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from feedsvc.config import SiteSettings
from feedsvc.content import absolutize_links, clean_xml_text
from feedsvc.models import Category, Post, Tag
from feedsvc.repo.related import RelatedView


@dataclass(frozen=True)
class EntryDocument:
    guid: str
    title: str
    link: str
    author: str
    summary: str
    content_html: str  # every page, sanitized, links absolute
    published: datetime
    updated: datetime
    category_name: str
    category_url: str
    tags: tuple[str, ...]
    language: str = ""  # the post's category's (JSON Feed 1.1 item language)


@dataclass(frozen=True)
class PageLinks:
    """RFC 5005 §3 (paged feeds): where the other pages of a feed are. All None for a feed
    that fits on one page: it is a complete feed, its bytes as they always were."""

    first: str | None = None
    next: str | None = None  # older entries
    previous: str | None = None  # newer entries (past the first page)


@dataclass(frozen=True)
class FeedDocument:
    feed_id: str  # RFC 4287 §4.2.6: atom:id is permanent
    title: str
    subtitle: str
    link: str  # the HTML page the feed mirrors
    self_url: str  # exactly the URL the feed was fetched from
    language: str
    author: str
    updated: datetime  # the newest change: lastBuildDate, atom:updated, Last-Modified
    entries: tuple[EntryDocument, ...]
    pages: PageLinks = PageLinks()
    # W3C WebSub §4 (discovery): the hub readers may subscribe to for this feed (rel="hub"
    # beside rel="self"), or None: WebSub is off, or this URL is no topic (a page past the
    # first, a ?limit= variant: only a feed's canonical URL is one).
    hub: str | None = None


@dataclass(frozen=True)
class Links:
    """Absolute URLs of the site's pages (one place knows the URL map)."""

    base_url: str

    def post(self, slug: str) -> str:
        return f"{self.base_url}/posts/{slug}"

    def category(self, slug: str) -> str:
        return f"{self.base_url}/categories/{slug}"

    def home(self) -> str:
        return f"{self.base_url}/"

    def feed(self, slug: str, fmt: str) -> str:
        # A tag's feed is named tags/{slug}: /feeds/tags/{slug}.{fmt}.
        return f"{self.base_url}/feeds/{slug}.{fmt}"

    def tag(self, name: str) -> str:
        """A tag's page, by its name (URL-encoded: /tags/%E5%AE%9A%E6%8A%95) or its slug."""
        return f"{self.base_url}/tags/{quote(name, safe='')}"

    def tag_feed(self, slug: str, fmt: str) -> str:
        """A tag's feed, by its slug: the URL the feed's fast path serves."""
        return self.feed(f"tags/{slug}", fmt)

    def opml(self) -> str:
        return f"{self.base_url}/feeds.opml"

    def related(self, item: RelatedView) -> str:
        return self.post(item.slug) if item.slug is not None else (item.link or self.home())


def _seconds(value: datetime) -> datetime:
    # HTTP dates (Last-Modified) have whole seconds; feed dates match them.
    return value.replace(microsecond=0)


RELATED_HEADING = "相关内容"
READ_MORE = "继续阅读"
SOURCE_LABEL = "来源："
EXCERPT_LENGTH = 80


def related_block(items: Sequence[RelatedView], links: Links) -> str:
    """The 相关内容 block under a post: title, a short excerpt and a 继续阅读 link each.

    Scores are left out on purpose: the same posts in the same order give the same bytes.
    Only called with items: a post without related items has no block at all.
    """
    rows = []
    for item in items:
        url = escape(links.related(item))
        excerpt = (
            item.summary
            if len(item.summary) <= EXCERPT_LENGTH
            else (item.summary[:EXCERPT_LENGTH].rstrip() + "…")
        )
        # An upstream item links to the original and says where it comes from.
        source = f"<small>{SOURCE_LABEL}{escape(item.source)}</small> " if item.source else ""
        rows.append(
            f'<li><a href="{url}">{escape(item.title)}</a>'
            f'<p>{source}{escape(excerpt)} <a href="{url}">{READ_MORE}</a></p></li>'
        )
    return f'<h3>{RELATED_HEADING}</h3><ul class="related">{"".join(rows)}</ul>'


def entry_document(
    post: Post, site: SiteSettings, links: Links, related: Sequence[RelatedView] = ()
) -> EntryDocument:
    # An aggregated post links to the original article; its relative links resolve there.
    link = post.origin_link or links.post(post.slug)
    # Pages are joined in order: a feed reader shows the whole post (共N页 is for the site).
    content = "\n".join(absolutize_links(page, link) for page in post.pages)
    if related:
        content += "\n" + related_block(related, links)
    tz = site.tz
    return EntryDocument(
        guid=post.guid,
        title=clean_xml_text(post.title),
        link=link,
        author=clean_xml_text(post.author or site.author),
        summary=clean_xml_text(post.summary),
        content_html=clean_xml_text(content),
        published=_seconds(post.published_at.astimezone(tz)),
        updated=_seconds(max(post.updated_at, post.published_at).astimezone(tz)),
        category_name=clean_xml_text(post.category.name),
        category_url=links.category(post.category.slug),
        tags=tuple(clean_xml_text(tag.name) for tag in post.tags),
        language=post.category.language or site.language,
    )


def newest_change(changed_at: datetime, posts: Sequence[Post]) -> datetime:
    """Last write that touched the feed, or a scheduled post that has since become due."""
    return max([changed_at, *(post.published_at for post in posts)])


def _document(
    feed: str,
    *,
    title: str,
    subtitle: str,
    link: str,
    language: str,
    posts: Sequence[Post],
    site: SiteSettings,
    self_url: str,
    changed_at: datetime,
    related: Mapping[int, Sequence[RelatedView]],
    pages: PageLinks,
    hub: str | None,
) -> FeedDocument:
    links = Links(site.base_url)
    return FeedDocument(
        feed_id=f"tag:{site.authority},{site.tag_date.isoformat()}:feeds/{feed}",
        title=clean_xml_text(title),
        subtitle=clean_xml_text(subtitle),
        link=link,
        self_url=self_url,
        language=language,
        author=clean_xml_text(site.author),
        updated=_seconds(newest_change(changed_at, posts).astimezone(site.tz)),
        entries=tuple(
            entry_document(post, site, links, related.get(post.id, ())) for post in posts
        ),
        pages=pages,
        hub=hub,
    )


def category_document(
    category: Category,
    posts: Sequence[Post],
    *,
    site: SiteSettings,
    self_url: str,
    changed_at: datetime,
    related: Mapping[int, Sequence[RelatedView]],
    pages: PageLinks = PageLinks(),
    hub: str | None = None,
) -> FeedDocument:
    return _document(
        category.slug,
        title=f"{category.name} - {site.title}",
        subtitle=category.description or site.description or category.name,
        link=Links(site.base_url).category(category.slug),
        language=category.language or site.language,
        posts=posts,
        site=site,
        self_url=self_url,
        changed_at=changed_at,
        related=related,
        pages=pages,
        hub=hub,
    )


TAG_SUBTITLE = "{site}中标记为「{tag}」的文章"


def tag_document(
    tag: Tag,
    posts: Sequence[Post],
    *,
    site: SiteSettings,
    self_url: str,
    changed_at: datetime,
    related: Mapping[int, Sequence[RelatedView]],
    pages: PageLinks = PageLinks(),
    hub: str | None = None,
) -> FeedDocument:
    return _document(
        f"tags/{tag.slug}",
        title=f"{tag.name} - {site.title}",
        subtitle=TAG_SUBTITLE.format(site=site.title, tag=tag.name),
        link=Links(site.base_url).tag(tag.slug),
        language=site.language,
        posts=posts,
        site=site,
        self_url=self_url,
        changed_at=changed_at,
        related=related,
        pages=pages,
        hub=hub,
    )


def site_document(
    posts: Sequence[Post],
    *,
    site: SiteSettings,
    self_url: str,
    changed_at: datetime,
    related: Mapping[int, Sequence[RelatedView]],
    pages: PageLinks = PageLinks(),
    hub: str | None = None,
) -> FeedDocument:
    return _document(
        "all",
        title=site.title,
        subtitle=site.description or site.title,
        link=Links(site.base_url).home(),
        language=site.language,
        posts=posts,
        site=site,
        self_url=self_url,
        changed_at=changed_at,
        related=related,
        pages=pages,
        hub=hub,
    )


# -- the subscription list: /feeds.opml ------------------------------------------------------


@dataclass(frozen=True)
class Outline:
    """One feed in the subscription list (OPML 2.0 §"Subscription lists")."""

    text: str
    title: str
    xml_url: str  # the RSS feed
    html_url: str  # the page it mirrors
    description: str
    language: str


@dataclass(frozen=True)
class OutlineDocument:
    title: str
    owner_name: str
    modified: datetime  # dateModified and Last-Modified
    outlines: tuple[Outline, ...]


# The list of categories has never changed (no category, none removed): the epoch.
LIST_NEVER_CHANGED = datetime(1970, 1, 1, tzinfo=UTC)


def subscription_list(
    categories: Sequence[Category], *, site: SiteSettings, removed_at: datetime | None
) -> OutlineDocument:
    """The site feed, then every category's feed in the site's order.

    It changes when a category is added, edited or removed: its date is the latest of those
    (a category's updated_at, the last removal), never the time of the request.
    """
    links = Links(site.base_url)
    site_outline = Outline(
        text=clean_xml_text(site.title),
        title=clean_xml_text(site.title),
        xml_url=links.feed("all", "rss"),
        html_url=links.home(),
        description=clean_xml_text(site.description),
        language=site.language,
    )
    outlines = [site_outline] + [
        Outline(
            text=clean_xml_text(category.name),
            title=clean_xml_text(category.name),
            xml_url=links.feed(category.slug, "rss"),
            html_url=links.category(category.slug),
            description=clean_xml_text(category.description),
            language=category.language or site.language,
        )
        for category in categories
    ]
    changes = [category.updated_at for category in categories]
    changes += [category.created_at for category in categories]
    if removed_at is not None:
        changes.append(removed_at)
    modified = max(changes, default=LIST_NEVER_CHANGED)
    return OutlineDocument(
        title=clean_xml_text(site.title),
        owner_name=clean_xml_text(site.author),
        modified=_seconds(modified.astimezone(site.tz)),
        outlines=tuple(outlines),
    )
