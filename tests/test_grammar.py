"""Chat text to typed requests: exact parses, usage errors with the usage line, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import catalog
from commands.grammar import REGISTRY, UsageError, parse, render

GOOD = [
    ("deploy hello", catalog.Deploy(app="hello")),
    ("deploy hello --env staging", catalog.Deploy(app="hello", env="staging")),
    ("deploy hello --env=staging", catalog.Deploy(app="hello", env="staging")),
    (
        "/deploy api v1.4.2 --env production",
        catalog.Deploy(app="api", ref="v1.4.2", env="production"),
    ),
    ("deploy hello --dry-run", catalog.Deploy(app="hello", dry_run=True)),
    ("rollback hello r3", catalog.Rollback(app="hello", release=3)),
    ("rollback hello", catalog.Rollback(app="hello")),
    ("logs hello --tail 200", catalog.Logs(app="hello", tail=200)),
    (
        "apps add hello --path 'examples/my app'",
        catalog.AppsAdd(name="hello", path="examples/my app"),
    ),
    ("apps list", catalog.AppsList()),
    ("help apps add", catalog.Help(topic="apps", sub="add")),
    (
        "grant slack:U024BE7LH deployer --app 'api-*' --env staging",
        catalog.GrantRole(user="slack:U024BE7LH", role="deployer", app="api-*", env="staging"),
    ),
    (
        "env set hello 'GREETING=hey there'",
        catalog.EnvSet(app="hello", assignment=("GREETING", "hey there")),
    ),
    ("approve 17", catalog.Approve(id=17)),
    ("  status  ", catalog.Status()),
]


@pytest.mark.parametrize(("text", "request_"), GOOD)
def test_parses(text, request_):
    assert parse(text) == request_
    assert parse(render(request_)) == request_


USAGE_ERRORS = [
    (
        "deploy",
        "deploy: missing APP",
        "deploy APP [REF] [--env ENV] [--dry-run] [--break-glass REASON] [--image IMAGE]",
    ),
    (
        "deploy hello --force",
        "deploy: unknown option --force (options: --env, --dry-run, --break-glass, --image)",
        "deploy APP [REF] [--env ENV] [--dry-run] [--break-glass REASON] [--image IMAGE]",
    ),
    (
        "deploy hello --env a --env b",
        "deploy: --env given twice",
        "deploy APP [REF] [--env ENV] [--dry-run] [--break-glass REASON] [--image IMAGE]",
    ),
    (
        "deploy hello --env",
        "deploy: --env needs a value (ENV)",
        "deploy APP [REF] [--env ENV] [--dry-run] [--break-glass REASON] [--image IMAGE]",
    ),
    (
        "deploy hello --dry-run=yes",
        "deploy: --dry-run takes no value",
        "deploy APP [REF] [--env ENV] [--dry-run] [--break-glass REASON] [--image IMAGE]",
    ),
    ("status a b", "status: unexpected argument 'b'", "status [APP] [--drift]"),
    (
        "deploy 'hello;rm -rf /'",
        "deploy: 'hello;rm -rf /' is not an app name (a-z, 0-9 and '-', starting with a letter)",
        "deploy APP [REF] [--env ENV] [--dry-run] [--break-glass REASON] [--image IMAGE]",
    ),
    ("deploy 'hello", "cannot read the command: No closing quotation (check the quotes)", None),
    ("", "empty command: type `help` to see the commands", None),
    ("launch hello", "unknown command 'launch': type `help` to see the commands", None),
    (
        "apps",
        "apps needs one of: add, list, remove",
        "apps add NAME [--path DIR] [--git URL] [--ref REF] | apps list | "
        "apps remove APP [--env ENV] [--delete-volumes] [--break-glass REASON]",
    ),
    (
        "scale hello many",
        "scale: expected a whole number, got 'many'",
        "scale APP N [--env ENV] [--break-glass REASON]",
    ),
    (
        "deploy hello ../../etc",
        "deploy: '../../etc' is not a git ref or image tag",
        "deploy APP [REF] [--env ENV] [--dry-run] [--break-glass REASON] [--image IMAGE]",
    ),
    ("deploy " + "a" * 5000, "message too long (5007 characters, at most 4000)", None),
]


@pytest.mark.parametrize(("text", "message", "usage"), USAGE_ERRORS)
def test_usage_errors(text, message, usage):
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert str(caught.value) == message
    assert caught.value.usage == usage


WORDS = sorted({word for name in REGISTRY for word in name.split()})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text):
    try:
        request = parse(text)
    except UsageError as exc:
        assert str(exc)
    else:
        assert type(request) in {spec.request for spec in REGISTRY.values()}


TOKENS = st.one_of(
    st.sampled_from(
        [
            "hello",
            "--env",
            "staging",
            "--tail",
            "5",
            "--dry-run",
            "-x",
            "'",
            "a;b",
            "$(id)",
            "r3",
            "--app",
            "*",
            "K=V",
            "console:bob",
            "admin",
        ]
    ),
    st.text(min_size=1, max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(REGISTRY)), st.lists(TOKENS, max_size=6))
def test_rejections_after_a_command_carry_its_usage(name, tokens):
    text = " ".join([name, *tokens])
    try:
        parse(text)
    except UsageError as exc:
        if exc.usage is not None:
            assert exc.usage == REGISTRY[name].usage or exc.usage.startswith(name.split()[0])
        else:  # only failures before a command is known carry no usage line
            assert str(exc).startswith(
                ("cannot read the command", "message too long", "unknown command")
            )
