"""The match key rules, pinned one by one."""

import string
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.matching.normalize import (
    MATCH_FIELDS,
    ObjectKind,
    company_name_key,
    email_key,
    fold,
    linkedin_key,
    person_name_key,
    phone_key,
)

KINDS: tuple[ObjectKind, ...] = ("person", "company", "other")
NON_TEXT: list[object] = [None, 0, 3125550100, 1.5, True, b"a@b.c", ["a@b.c"], {}]

# Every key function reduced to one text argument, so the properties below can be
# stated once for all of them.
KEY_FUNCTIONS: dict[str, Callable[[str], str | None]] = {
    "email": email_key,
    "phone": phone_key,
    "phone_gb": lambda value: phone_key(value, "GB"),
    "linkedin_person": lambda value: linkedin_key(value, "person"),
    "linkedin_company": lambda value: linkedin_key(value, "company"),
    "linkedin_other": lambda value: linkedin_key(value, "other"),
    "person_name_first": lambda value: person_name_key(value, "Doe"),
    "person_name_last": lambda value: person_name_key("Jane", value),
    "company_name": company_name_key,
}
key_function = pytest.mark.parametrize(
    "key", list(KEY_FUNCTIONS.values()), ids=list(KEY_FUNCTIONS)
)

OUTER_SPACE = " \t\u00a0\u3000"
ASCII_TEXT = st.text(alphabet=string.printable)
# Text that looks like what people type into the phone and LinkedIn fields, so the
# parsers are driven past their first check instead of failing on the first character.
NEAR_PHONE = st.from_regex(
    r"(\+|00|\(|tel:)?[0-9 ().\-/+xX]{0,30}((ext\.?|x|#|;ext=)\s?[0-9]{0,8})?",
    fullmatch=True,
)
NEAR_URL = st.from_regex(
    r"(https?://|//|ftp://|[a-z]{1,6}:)?([a-z0-9.@\[\]:-]{0,12}\.)?"
    r"(linkedin\.com|evil\.com)(:[0-9a-z]{0,5})?"
    r"(/[a-zA-Z0-9%._~!$&'()*+,;=:@\-]{0,12}){0,5}/?(\?[^#]{0,10})?(#.{0,10})?",
    fullmatch=True,
)
ANY_TEXT = st.one_of(st.text(), ASCII_TEXT, NEAR_PHONE, NEAR_URL)


def test_match_fields_are_listed_in_tie_break_order() -> None:
    assert MATCH_FIELDS == ("email", "phone", "linkedin", "name")


# --- fold -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        pytest.param("ＡＢＣ", "abc", id="nfkc-fullwidth"),
        pytest.param("ﬁle", "file", id="nfkc-ligature"),
        pytest.param("Straße", "strasse", id="full-case-folding"),
        pytest.param("ΣΊΣΥΦΟΣ", "σίσυφοσ", id="final-sigma-folds"),
        pytest.param("\t\u00a0Jane\u3000\n", "jane", id="trims-unicode-space"),
        pytest.param("Jane \t\u00a0 Mary\n\nDoe", "jane mary doe", id="collapses-runs"),
        pytest.param("Ｊａｎｅ\u2003Ｄｏｅ", "jane doe", id="nfkc-space-collapsed"),
        pytest.param("José", "josé", id="accents-kept"),
        pytest.param("e\u0301", "é", id="composed"),
        pytest.param(" \t\n\u00a0", "", id="blank"),
    ],
)
def test_fold_examples(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_fold_keeps_accented_and_plain_letters_apart() -> None:
    assert fold("É") != fold("E")


def test_fold_reaches_a_fixed_point_where_one_round_does_not() -> None:
    # One round of NFKC then casefold turns "ß" + combining acute into "s" + "s" +
    # combining acute, which the next NFKC composes into "ś": a single pass would not
    # be idempotent.
    once = fold("ß\u0301")
    assert once == "sś"
    assert fold(once) == once


@given(st.text())
def test_fold_is_idempotent(value: str) -> None:
    assert fold(fold(value)) == fold(value)


@given(st.text())
def test_fold_leaves_no_outer_or_repeated_white_space(value: str) -> None:
    folded = fold(value)
    assert " ".join(folded.split()) == folded


# --- email ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        pytest.param(" Alice@Example.COM ", "alice@example.com", id="folded-trimmed"),
        pytest.param("\u00a0bob@x.org\t", "bob@x.org", id="nbsp-trimmed"),
        pytest.param("Straße@Example.de", "strasse@example.de", id="full-folding"),
        pytest.param("j.doe+crm@gmail.com", "j.doe+crm@gmail.com", id="dots-tags-kept"),
        pytest.param("mailto:a@b.c", "mailto:a@b.c", id="mailto-not-stripped"),
        pytest.param("josé@exämple.com", "josé@exämple.com", id="accents-kept"),
        pytest.param("a＠b.c", "a@b.c", id="fullwidth-at"),
        pytest.param("a@b", "a@b", id="no-dot-required"),
        pytest.param("a@b@c", None, id="two-at-signs"),
        pytest.param("@b", None, id="empty-local-part"),
        pytest.param("a@", None, id="empty-domain"),
        pytest.param(" @ ", None, id="only-at"),
        pytest.param("alice.example.com", None, id="no-at"),
        pytest.param("", None, id="empty"),
        pytest.param(" \t ", None, id="white-space-only"),
        pytest.param("a\x00@b.c", None, id="nul-not-storable"),
        pytest.param("a\ud800@b.c", None, id="lone-surrogate-not-storable"),
    ],
)
def test_email_key_examples(raw: str, key: str | None) -> None:
    assert email_key(raw) == key


def test_email_key_keeps_dots_apart() -> None:
    assert email_key("jane.doe@gmail.com") != email_key("janedoe@gmail.com")


@pytest.mark.parametrize("value", NON_TEXT)
def test_email_key_of_non_text_is_none(value: object) -> None:
    assert email_key(value) is None


@given(ANY_TEXT)
def test_email_key_holds_exactly_one_at_with_text_around_it(value: str) -> None:
    key = email_key(value)
    if key is not None:
        local, _, domain = key.partition("@")
        assert local
        assert domain
        assert "@" not in domain
        assert fold(key) == key


# --- phone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "key"),
    [
        pytest.param("(312) 555-0100", "US", "+13125550100", id="national-us"),
        pytest.param("+1 312.555.0100", "US", "+13125550100", id="international"),
        pytest.param(
            "+1 (312) 555-0100 ext. 12", "US", "+13125550100;ext=12", id="extension"
        ),
        pytest.param(
            "312-555-0100 x ١٢",
            "US",
            "+13125550100;ext=12",
            id="extension-ascii-digits",
        ),
        pytest.param("３１２ ５５５ ０１００", "US", "+13125550100", id="fullwidth"),
        pytest.param("1-800-FLOWERS", "US", "+18003569377", id="letters"),
        pytest.param("0033 1 42 68 53 00", "US", "+33142685300", id="00-retried-as-+"),
        pytest.param("00 44 20 7946 0958", "US", "+442079460958", id="00-with-space"),
        pytest.param("0033 1 42 68 53 00", "FR", "+33142685300", id="00-native-idd"),
        pytest.param("01 42 68 53 00", "FR", "+33142685300", id="national-fr"),
        pytest.param("01 42 68 53 00", "fr", "+33142685300", id="region-any-case"),
        pytest.param("386-5286", "US", "+13865286", id="local-only-length"),
        pytest.param("3865286", "US", "+13865286", id="local-only-digits"),
        pytest.param("+33142685300", "ZZ", "+33142685300", id="unknown-region-intl"),
        pytest.param("3125550100", "ZZ", None, id="unknown-region-national"),
        pytest.param("3125550100", "", None, id="empty-region"),
        pytest.param("(000) 000-0000", "US", None, id="zeros-repeated"),
        pytest.param("000-000-0000", "US", None, id="zeros-dashed"),
        pytest.param("1111111", "US", None, id="ones-repeated"),
        pytest.param("+1 222 222 2222", "US", None, id="twos-international"),
        pytest.param("555", "US", None, id="too-short"),
        pytest.param("+1 312 555 0100 0100 0100", "US", None, id="too-long"),
        pytest.param("N/A", "US", None, id="not-a-number"),
        pytest.param("none", "US", None, id="word"),
        pytest.param("", "US", None, id="empty"),
        pytest.param(" \t\u00a0", "US", None, id="white-space-only"),
        pytest.param("9" * 300, "US", None, id="longer-than-the-parser-takes"),
    ],
)
def test_phone_key_examples(raw: str, region: str, key: str | None) -> None:
    assert phone_key(raw, region) == key


def test_phone_key_region_defaults_to_us() -> None:
    assert phone_key("(312) 555-0100") == "+13125550100"


def test_phone_key_local_only_forms_match_each_other() -> None:
    assert phone_key("386-5286") == phone_key("386 5286") == phone_key("3865286")


def test_phone_key_00_is_not_retried_when_it_already_parses() -> None:
    # In the US "0012345678" is a possible (ten-digit) national number, so the "00"
    # is not taken for an international prefix.
    assert phone_key("0012345678", "US") == "+10012345678"


def test_phone_key_extension_distinguishes_numbers() -> None:
    assert phone_key("312 555 0100 ext 1") != phone_key("312 555 0100 ext 2")
    assert phone_key("312 555 0100 ext 1") != phone_key("312 555 0100")


@pytest.mark.parametrize("value", NON_TEXT)
def test_phone_key_of_non_text_is_none(value: object) -> None:
    assert phone_key(value) is None


@settings(max_examples=300)
@given(st.one_of(st.text(), NEAR_PHONE), st.text(max_size=3))
def test_phone_key_never_raises(value: str, region: str) -> None:
    key = phone_key(value, region)
    if key is not None:
        assert key.startswith("+")
        number, _, extension = key.partition(";ext=")
        assert number[1:].isdigit()
        assert number.isascii()
        assert extension == "" or (extension.isdigit() and extension.isascii())


# --- linkedin ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        pytest.param(
            "https://www.linkedin.com/in/Jane-Doe/?trk=x", "in:jane-doe", id="full-url"
        ),
        pytest.param("linkedin.com/in/jane-doe", "in:jane-doe", id="no-scheme"),
        pytest.param("//linkedin.com/in/jane-doe", "in:jane-doe", id="scheme-relative"),
        pytest.param("HTTP://LinkedIn.COM/IN/JANE", "in:jane", id="upper-case"),
        pytest.param("uk.linkedin.com/in/jane%C3%A9", "in:janeé", id="percent-decoded"),
        pytest.param("m.linkedin.com/in/jane%c3%a9", "in:janeé", id="lower-hex"),
        pytest.param("linkedin.com/in/Stra%C3%9Fe", "in:strasse", id="decoded-folded"),
        pytest.param(
            "linkedin.com/in/jane/details/experience", "in:jane", id="subpage"
        ),
        pytest.param("linkedin.com/in/jane#about", "in:jane", id="fragment"),
        pytest.param("linkedin.com/in/jane//", "in:jane", id="trailing-slashes"),
        pytest.param("linkedin.com:443/in/jane", "in:jane", id="explicit-port"),
        pytest.param("www.linkedin.com./in/jane", "in:jane", id="fqdn-dot"),
        pytest.param("https://www.linkedin.com/mwlite/in/jane", "in:jane", id="mwlite"),
        pytest.param("linkedin.com/company/Acme-Corp/about/", "company:acme-corp"),
        pytest.param("linkedin.com/school/mit", "school:mit", id="school"),
        pytest.param("linkedin.com/showcase/acme-labs", "showcase:acme-labs"),
        pytest.param(
            "http://www.linkedin.com/pub/name/1a/2b3/4c5/",
            "pub:name/1a/2b3/4c5",
            id="legacy-pub",
        ),
        pytest.param("https://evil.com/in/jane", None, id="other-host"),
        pytest.param("https://notlinkedin.com/in/x", None, id="suffix-not-a-label"),
        pytest.param("https://linkedin.com.evil.com/in/x", None, id="prefix-host"),
        pytest.param("https://linkedin.com@evil.com/in/x", None, id="userinfo-trick"),
        pytest.param("ftp://linkedin.com/in/jane", None, id="not-http"),
        pytest.param("https://[linkedin.com/in/jane", None, id="broken-authority"),
        pytest.param("linkedin.com/in/", None, id="no-vanity"),
        pytest.param("linkedin.com", None, id="no-path"),
        pytest.param("linkedin.com/feed/", None, id="unknown-section"),
        pytest.param("linkedin.com/pub/", None, id="empty-pub"),
        pytest.param("linkedin.com/in/%zz", None, id="broken-escape"),
        pytest.param("linkedin.com/in/jane%4", None, id="truncated-escape"),
        pytest.param("linkedin.com/in/%ff", None, id="invalid-utf8"),
        pytest.param("linkedin.com/pub/name/%zz/2b3", None, id="pub-broken-escape"),
        pytest.param("linkedin.com/in/%20", None, id="decodes-to-blank"),
        pytest.param("linkedin.com/in/jane%20doe", None, id="decodes-to-space"),
        pytest.param("linkedin.com/in/a%2Fb", None, id="encoded-slash"),
        pytest.param("linkedin.com/in/a%00b", None, id="encoded-nul"),
        pytest.param("jane.doe", None, id="dotted-bare-is-a-host"),
        pytest.param("", None, id="empty"),
        pytest.param(" \t\u00a0", None, id="white-space-only"),
    ],
)
def test_linkedin_key_examples(raw: str, key: str | None) -> None:
    assert linkedin_key(raw, "person") == key


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("person", "in:jane-doe"),
        ("company", "company:jane-doe"),
        # Documented choice: a bare name on any other object reads as a profile.
        ("other", "in:jane-doe"),
    ],
)
def test_linkedin_key_of_bare_vanity_depends_on_kind(
    kind: ObjectKind, key: str
) -> None:
    assert linkedin_key(" Jane-Doe ", kind) == key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        pytest.param("jane%C3%A9", "in:janeé", id="decoded"),
        pytest.param("jane?trk=x", "in:jane", id="query-ignored"),
        pytest.param("jane#x", "in:jane", id="fragment-ignored"),
        pytest.param("Jane Doe", None, id="name-not-vanity"),
        pytest.param("%zz", None, id="broken-escape"),
    ],
)
def test_linkedin_key_bare_vanity_examples(raw: str, key: str | None) -> None:
    assert linkedin_key(raw, "person") == key


@pytest.mark.parametrize("kind", KINDS)
def test_linkedin_key_of_url_ignores_kind(kind: ObjectKind) -> None:
    assert linkedin_key("linkedin.com/company/acme", kind) == "company:acme"
    assert linkedin_key("linkedin.com/in/jane", kind) == "in:jane"


@pytest.mark.parametrize("value", NON_TEXT)
def test_linkedin_key_of_non_text_is_none(value: object) -> None:
    assert linkedin_key(value, "person") is None


@given(
    st.sampled_from(["", "http://", "https://", "HTTPS://", "//"]),
    st.sampled_from(["", "www.", "uk.", "m.", "de.", "WWW."]),
    st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,29}", fullmatch=True),
    st.sampled_from(["", "/", "/details/experience/", "?trk=x", "/#top", "/?a=b#c"]),
)
def test_linkedin_key_of_profile_url_is_its_vanity(
    scheme: str, subdomain: str, vanity: str, tail: str
) -> None:
    url = f"{scheme}{subdomain}linkedin.com/in/{vanity}{tail}"
    assert linkedin_key(url, "company") == f"in:{vanity.lower()}"


@settings(max_examples=300)
@given(st.one_of(st.text(), NEAR_URL), st.sampled_from(KINDS))
def test_linkedin_key_never_raises(value: str, kind: ObjectKind) -> None:
    key = linkedin_key(value, kind)
    if key is not None:
        prefix, _, slug = key.partition(":")
        assert prefix in {"in", "company", "school", "showcase", "pub"}
        assert slug
        assert not any(ch.isspace() for ch in slug)


# --- names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "key"),
    [
        pytest.param(" Jane ", "DOE", "jane doe", id="folded"),
        pytest.param("Mary\u00a0 Ann", "Smith\tJones", "mary ann smith jones"),
        pytest.param("Jürgen", "Straße", "jürgen strasse", id="accents-ss"),
        pytest.param("Jane", " ", None, id="blank-last"),
        pytest.param("", "Doe", None, id="empty-first"),
        pytest.param("Jane", None, None, id="null-last"),
        pytest.param(None, "Doe", None, id="null-first"),
        pytest.param(1, "Doe", None, id="non-text-first"),
    ],
)
def test_person_name_key_examples(first: object, last: object, key: str | None) -> None:
    assert person_name_key(first, last) == key


def test_person_name_key_keeps_first_and_last_in_order() -> None:
    assert person_name_key("Jane", "Doe") != person_name_key("Doe", "Jane")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        pytest.param(" ACME\u00a0 Corp ", "acme corp", id="folded"),
        pytest.param("Ｓｔｒａßｅ GmbH", "strasse gmbh", id="nfkc-ss"),
        pytest.param("Café Ltd", "café ltd", id="accents-kept"),
        pytest.param("\t", None, id="blank"),
        pytest.param(None, None, id="null"),
        pytest.param(42, None, id="non-text"),
    ],
)
def test_company_name_key_examples(name: object, key: str | None) -> None:
    assert company_name_key(name) == key


@given(st.text(), st.text())
def test_person_name_key_is_a_fixed_point_of_fold(first: str, last: str) -> None:
    key = person_name_key(first, last)
    if key is not None:
        assert fold(key) == key


# --- properties shared by every key -----------------------------------------------


@key_function
@given(value=ANY_TEXT)
def test_key_never_raises_on_any_text(
    key: Callable[[str], str | None], value: str
) -> None:
    result = key(value)
    assert result is None or result


@key_function
@given(value=ANY_TEXT)
def test_key_ignores_what_fold_removes(
    key: Callable[[str], str | None], value: str
) -> None:
    assert key(fold(value)) == key(value)


@key_function
@given(value=ANY_TEXT, left=st.text(OUTER_SPACE), right=st.text(OUTER_SPACE + "\n"))
def test_key_ignores_outer_white_space(
    key: Callable[[str], str | None], value: str, left: str, right: str
) -> None:
    assert key(left + value + right) == key(value)


@key_function
@given(value=st.one_of(ASCII_TEXT, NEAR_URL, NEAR_PHONE))
def test_key_ignores_ascii_letter_case(
    key: Callable[[str], str | None], value: str
) -> None:
    # Restricted to ASCII: some letters fold differently once upper-cased ("ŉ").
    assert key(value.upper()) == key(value) == key(value.lower())


@key_function
@pytest.mark.parametrize("value", ["", " ", "\t\n", "\u00a0\u3000"])
def test_key_of_blank_text_is_none(
    key: Callable[[str], str | None], value: str
) -> None:
    assert key(value) is None
