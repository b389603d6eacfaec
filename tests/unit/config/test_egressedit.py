"""Entries go into `[network] egress` as the user would have written them; anything the
edit cannot place provably is refused for the user to add by hand."""

from __future__ import annotations

import pytest

from alcatraz.config.egressedit import EditError, add_egress_entries
from alcatraz.config.egressentry import covers
from alcatraz.config.netgrammar import parse_egress_rule, render_egress_rule

NEW = ["new.test", "*.x.test:443"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            '[network]\negress = ["a.test"]\n',
            '[network]\negress = ["a.test", "new.test", "*.x.test:443"]\n',
        ),
        ("[network]\negress = []\n", '[network]\negress = ["new.test", "*.x.test:443"]\n'),
        (
            '[network]\negress = [\n  "a.test",  # api\n  "b.test"\n]\n',
            '[network]\negress = [\n  "a.test",  # api\n  "b.test",\n'
            '  "new.test",\n  "*.x.test:443",\n]\n',
        ),
        (
            '[network]\negress = [\n    "a.test",\n]\n# end\n',
            '[network]\negress = [\n    "a.test",\n    "new.test",\n    "*.x.test:443",\n]\n'
            "# end\n",
        ),
        (
            '[network]\nlan-access = [] # lan\n\n# next\n[envs]\nA = "]"\n',
            '[network]\nlan-access = [] # lan\negress = ["new.test", "*.x.test:443"]\n\n'
            '# next\n[envs]\nA = "]"\n',
        ),
        ("[network] # net\n", '[network] # net\negress = ["new.test", "*.x.test:443"]\n'),
        ('image = "x"\n', 'image = "x"\n\n[network]\negress = ["new.test", "*.x.test:443"]\n'),
        ('image = "x"', 'image = "x"\n\n[network]\negress = ["new.test", "*.x.test:443"]\n'),
        (
            'network.egress = ["a.test"] # c\n',
            'network.egress = ["a.test", "new.test", "*.x.test:443"] # c\n',
        ),
        (
            '[network]\negress = [ "a]b#c" ]\n',
            '[network]\negress = [ "a]b#c", "new.test", "*.x.test:443" ]\n',
        ),
        (
            "[network]\negress = ['''a\n]''']\n",
            "[network]\negress = ['''a\n]''', \"new.test\", \"*.x.test:443\"]\n",
        ),
        (
            '[[mounts]]\negress = []\n[network]\negress = ["a.test"]\n',
            '[[mounts]]\negress = []\n[network]\negress = ["a.test", "new.test", "*.x.test:443"]\n',
        ),
    ],
)
def test_entries_are_added_in_the_style_of_the_file(before: str, after: str) -> None:
    assert add_egress_entries(before, NEW) == after


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[network]\n"egress" = ["a.test"]\n', "new.test"),  # a quoted key
        ('network = { egress = ["a.test"] }\n', "new.test"),  # an inline table
        ('[network]\negress = "a.test"\n', "new.test"),  # not an array
        ("[network\n", "not valid TOML"),
    ],
)
def test_what_cannot_be_placed_provably_is_refused(text: str, message: str) -> None:
    with pytest.raises(EditError, match=message):
        add_egress_entries(text, NEW)


@pytest.mark.parametrize(
    ("existing", "wanted", "covered"),
    [
        ("a.test", "a.test", True),
        ("a.test", "a.test:443", True),
        ("a.test:443", "a.test", False),
        ("a.test:443", "tcp://a.test:443", True),
        ("tcp://a.test", "a.test:443", False),
        ("tcp://a.test", "tcp://a.test:22-23", True),
        ("a.test:400-500", "a.test:443", True),
        ("a.test:400-500", "a.test:399-443", False),
        ("*.a.test", "b.a.test", True),
        ("*.a.test", "c.b.a.test", True),
        ("*.a.test", "a.test", False),
        ("*.a.test", "*.a.test", True),
        ("*.a.test", "*.b.a.test", True),
        ("a.test", "*.a.test", False),
        ("b.test", "a.test", False),
        ("*.a.test", "xa.test", False),
    ],
)
def test_covers(existing: str, wanted: str, covered: bool) -> None:
    assert covers(parse_egress_rule(existing), parse_egress_rule(wanted)) is covered


@pytest.mark.parametrize(
    "text",
    ["a.test", "*.a.test", "a.test:443", "a.test:20-21", "tcp://a.test", "udp://a.test:123"],
)
def test_entries_render_back_as_written(text: str) -> None:
    assert render_egress_rule(parse_egress_rule(text)) == text
    assert parse_egress_rule(render_egress_rule(parse_egress_rule(text))) == parse_egress_rule(text)
