"""Turn raw field values into match keys: the one place the matching rules live.

Every function here is pure and total: any input, of any type, gives either a key or
``None``, never an exception, because one odd value typed into a CRM must not fail a
whole detection or import. ``None`` means "this value never groups with anything".

Keys are stored in PostgreSQL and compared there, so a key that PostgreSQL text cannot
hold (a NUL character, a lone surrogate from JSON such as ``"\\ud800"``) is treated as
no key rather than left to fail at write time.
"""

import re
import unicodedata
from typing import Literal
from urllib.parse import SplitResult, unquote_to_bytes, urlsplit

import phonenumbers

ObjectKind = Literal["person", "company", "other"]
MatchField = Literal["email", "phone", "linkedin", "name"]

#: Every field a record can match on; this order also breaks ties between fields that
#: produce the same group (the first one is the group's ``match_reason``).
MATCH_FIELDS: tuple[MatchField, ...] = ("email", "phone", "linkedin", "name")

# NFKC followed by case folding is not always a fixed point: folding can undo a
# composition NFKC made (``"ß\u0301"`` folds to ``"ss\u0301"``, which NFKC then
# composes again), so the steps are repeated until nothing changes. An exhaustive search
# over code points and combining pairs never needed more than three rounds; the bound
# only guards against looping forever on some future Unicode table.
_MAX_FOLD_ROUNDS = 16

_LINKEDIN_HOST = "linkedin.com"
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://")
_PERCENT_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")
# Section names whose next path segment is the slug, and the key prefix each gives.
_SLUG_SECTIONS = {
    "in": "in",
    "company": "company",
    "school": "school",
    "showcase": "showcase",
}


def _fold_once(value: str) -> str:
    normalized = unicodedata.normalize("NFKC", value).casefold()
    # str.split() with no argument splits on every Unicode white space character and
    # drops empty pieces, which trims and collapses in one go.
    return " ".join(normalized.split())


def fold(value: str) -> str:
    """Return the one canonical form every text key is built from.

    Unicode NFKC, full case folding (``"ß"`` becomes ``"ss"``), outer white space of
    every kind removed and inner runs of it collapsed to one ASCII space. Accents are
    kept. ``fold(fold(x)) == fold(x)`` for every string.
    """
    current = value
    for _ in range(_MAX_FOLD_ROUNDS):
        folded = _fold_once(current)
        if folded == current:
            break
        current = folded
    return current


def _storable(key: str) -> bool:
    if "\x00" in key:
        return False
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _folded_text(value: object) -> str | None:
    """Fold a string; anything that is not a non-blank, storable string gives None."""
    if not isinstance(value, str):
        return None
    folded = fold(value)
    if not folded or not _storable(folded):
        return None
    return folded


def email_key(value: object) -> str | None:
    """Return the match key of an email address, or None.

    The key is the folded text itself, which must hold exactly one ``@`` with text on
    both sides. Nothing else is rewritten: dots, ``+tags`` and even a ``mailto:``
    prefix stay, so two addresses only match when a person would call them the same.
    """
    folded = _folded_text(value)
    if folded is None:
        return None
    local, at, domain = folded.partition("@")
    if not at or not local or not domain or "@" in domain:
        return None
    return folded


def _parse_possible_phone(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """Parse with libphonenumber; None unless the result is a possible number."""
    try:
        number = phonenumbers.parse(text, region)
        possible = bool(phonenumbers.is_possible_number(number))
    except Exception:
        # The parser is a large third-party state machine fed with free text; any
        # failure inside it means "no phone key", never a failed request.
        return None
    return number if possible else None


def phone_key(value: object, region: str = "US") -> str | None:
    """Return the E.164 match key of a phone number, or None.

    The text is parsed in ``region`` (ISO 3166 code, case-insensitive). A text that
    starts with ``00`` and is not a possible number there is read again as ``+``
    (``00`` is the international prefix in most of the world, but not in the US).
    Every number libphonenumber calls possible gets a key, local-only lengths
    included, so ``386-5286`` and ``3865286`` match. An extension is kept as
    ``;ext=N``. A national number of one repeated digit (``000-000-0000``) is a
    placeholder, not a phone, and gets no key.
    """
    text = _folded_text(value)
    if text is None or not isinstance(region, str):
        return None
    region_code = region.strip().upper()
    number = _parse_possible_phone(text, region_code)
    if number is None and text.startswith("00"):
        number = _parse_possible_phone("+" + text[2:], region_code)
    if number is None:
        return None
    try:
        national = str(phonenumbers.national_significant_number(number))
        key = str(
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        )
        # libphonenumber keeps the extension's digits as typed (Arabic-Indic,
        # full-width...); the key spells them in ASCII so equal extensions match.
        extension = phonenumbers.normalize_digits_only(number.extension or "")
    except Exception:
        # Same reason as in _parse_possible_phone: a library failure is no key.
        return None
    if len(set(national)) <= 1:
        return None
    if extension:
        key = f"{key};ext={extension}"
    return key


def _slug(segment: str, *, allow_slash: bool = False) -> str | None:
    """Percent-decode one path segment strictly, then fold it.

    A broken escape (``%zz``, a truncated ``%4``) or bytes that are not UTF-8 give
    None: guessing what a damaged URL meant could merge two different people.
    """
    if _PERCENT_ESCAPE.search(segment):
        return None
    try:
        decoded = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        return None
    # fold() applies NFKC, which yields the NFC form as well, so the NFC step of the
    # spec needs no call of its own.
    slug = fold(decoded)
    if not slug or not _storable(slug):
        return None
    # LinkedIn slugs hold no white space or control characters; a text with a space is
    # far more likely a name typed into the wrong field than a vanity. An encoded "/"
    # (%2F) is refused so that a key's slashes always mean path separators.
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in slug):
        return None
    if "/" in slug and not allow_slash:
        return None
    return slug


def _split_url(text: str) -> SplitResult | None:
    """Split a URL typed with or without a scheme; None when it cannot be split."""
    # Without "//" urlsplit would read "linkedin.com/in/x" as a bare path.
    has_authority = bool(_SCHEME.match(text)) or text.startswith("//")
    candidate = text if has_authority else "//" + text
    try:
        parts = urlsplit(candidate)
    except ValueError:
        # A malformed authority, such as an unbalanced "[" taken for an IPv6 address.
        return None
    if parts.scheme not in ("", "http", "https"):
        return None
    return parts


def _is_linkedin_host(hostname: str | None) -> bool:
    if not hostname:
        return False
    host = hostname.removesuffix(".")
    # Comparing whole labels, so "notlinkedin.com" is not taken for a subdomain.
    return host == _LINKEDIN_HOST or host.endswith("." + _LINKEDIN_HOST)


def _linkedin_path_key(path: str) -> str | None:
    # Empty segments come from trailing or doubled slashes, which carry no meaning.
    segments = [segment for segment in path.split("/") if segment]
    if segments[:2] == ["mwlite", "in"]:
        # The old mobile site nests the profile path one level down.
        segments = segments[1:]
    if len(segments) < 2:
        return None
    section = segments[0]
    if section == "pub":
        # Legacy public profiles are identified by their whole path (name plus a
        # three-part id), so every segment after /pub/ belongs to the key.
        parts = [_slug(segment) for segment in segments[1:]]
        if any(part is None for part in parts):
            return None
        return "pub:" + "/".join(part for part in parts if part is not None)
    prefix = _SLUG_SECTIONS.get(section)
    if prefix is None:
        return None
    # Anything after the slug is a sub-page (/details/experience, a language code).
    slug = _slug(segments[1])
    return None if slug is None else f"{prefix}:{slug}"


def linkedin_key(value: object, kind: ObjectKind) -> str | None:
    """Return the match key of a LinkedIn URL or bare vanity name, or None.

    URLs may omit the scheme and may use ``linkedin.com`` or any subdomain of it;
    other hosts give no key. ``/in/<vanity>`` and ``/mwlite/in/<vanity>`` give
    ``in:<vanity>``; ``/company/``, ``/school/`` and ``/showcase/`` give
    ``company:``, ``school:`` and ``showcase:`` keys; a legacy ``/pub/...`` URL gives
    ``pub:`` followed by its whole path. Query, fragment, trailing slash and sub-pages
    are ignored; the slug is percent-decoded and folded.

    A bare value with neither ``/`` nor ``.`` is a vanity name: ``company:<slug>`` on
    company objects and ``in:<vanity>`` otherwise. Objects of kind ``"other"`` get
    ``in:`` because a profile link is what a free LinkedIn field most often holds.
    """
    text = _folded_text(value)
    if text is None:
        return None
    if "/" not in text and "." not in text:
        # Treat a stray "?trk=..." or "#..." like the query and fragment of a URL.
        vanity = text.partition("#")[0].partition("?")[0]
        slug = _slug(vanity)
        if slug is None:
            return None
        prefix = "company" if kind == "company" else "in"
        return f"{prefix}:{slug}"
    parts = _split_url(text)
    if parts is None or not _is_linkedin_host(parts.hostname):
        return None
    return _linkedin_path_key(parts.path)


def person_name_key(first: object, last: object) -> str | None:
    """Return ``"first last"`` folded when both names are non-blank, else None."""
    first_folded = _folded_text(first)
    last_folded = _folded_text(last)
    if first_folded is None or last_folded is None:
        return None
    # Folding the joined text keeps the key a fixed point of fold() even when the last
    # name starts with a combining mark.
    return fold(f"{first_folded} {last_folded}")


def company_name_key(name: object) -> str | None:
    """Return the folded company name, or None when it is blank."""
    return _folded_text(name)
