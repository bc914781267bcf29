"""Webhook bodies (sitecue.webhooks.bodies): the plain message, sandboxed JSON templates that
no visitor's text can break out of, refused at load when they escape the sandbox or the config
directory or make no JSON, and the two shipped examples' shapes."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import sitecue.webhooks.bodies as bodies
from sitecue.errors import ConfigError, WebhookBodyInvalid
from sitecue.webhooks.bodies import SAMPLES, Body, compile_body, render

CONFIG = Path(__file__).resolve().parent.parent / "config"
WHERE = "$.webhooks[0].body"
BREAKOUT = '"}, "admin": true, "x": {"'

FORM: dict[str, Any] = {
    "id": "m-1",
    "event": "form.submitted",
    "site": "news",
    "at": 1764115200000,
    "contact": "ann@example.com",
    "rule": "newsletter",
    "variant": "short",
    "decision": "d" * 24,
    "fields": {"email": "ann@example.com", "name": "Ann"},
    "consents": {"consent": "Yes, email me the newsletter"},
    "submission": "s-1",
}


def sample(event: str) -> Mapping[str, Any]:
    return next(s for s in SAMPLES if s["event"] == event)


def write(root: Path, text: str, name: str = "webhooks/t.json.j2") -> str:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    return name


def compiled(tmp_path: Path, text: str, events: tuple[str, ...] = ("form.submitted",)) -> Body:
    """Compiled for a webhook taking ``events`` (form submissions unless said otherwise)."""
    body = compile_body(tmp_path, write(tmp_path, text), WHERE, events=events)
    assert body is not None
    return body


def hook(body: Body | None) -> SimpleNamespace:
    return SimpleNamespace(id="esp", body=body)


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        compile_body(tmp_path, write(tmp_path, text), WHERE)
    assert all(p.path == WHERE for p in err.value.problems)
    return str(err.value)


def test_public_surface() -> None:
    assert set(bodies.__all__) == {
        "EVENTS", "MAX_BODY", "SAMPLES", "Body", "compile_body", "render",
    }  # fmt: skip
    assert {s["event"] for s in SAMPLES} == set(bodies.EVENTS)


def test_no_template_is_the_message_as_json(tmp_path: Path) -> None:
    assert compile_body(tmp_path, None, WHERE) is None
    assert json.loads(render(hook(None), FORM)) == FORM


def test_a_message_that_is_no_json_is_a_permanent_failure() -> None:
    with pytest.raises(WebhookBodyInvalid) as err:
        render(hook(None), {**FORM, "fields": object()})
    assert err.value.webhook == "esp"


def test_every_expression_is_a_json_value(tmp_path: Path) -> None:
    body = compiled(
        tmp_path,
        '{"email": {{ fields.get("email") }}, "all": {{ fields }}, "n": {{ at }},'
        ' "c": {{ contact }}, "keys": {{ fields.keys() }},'
        ' "t": {{ fields.get("email") | tojson }}, "iso": {{ at | iso8601 }}}',
    )
    out = json.loads(render(hook(body), FORM))
    assert out == {
        "email": "ann@example.com",
        "all": FORM["fields"],
        "n": 1764115200000,
        "c": "ann@example.com",
        "keys": ["email", "name"],
        "t": "ann@example.com",
        "iso": "2025-11-26T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("expression", "same"),
    [("fields.get('name')", True), ("fields.get('name') | tojson", True),
     ("fields.get('name') | safe", True), ("fields.get('name') ~ ''", True),
     ("fields.get('name') | string", True), ("(fields.get('name') | tojson)[1:-1]", False),
     ("fields.get('name') | replace('\"', '')", False)],
)  # fmt: skip
def test_a_visitors_text_stays_one_string(tmp_path: Path, expression: str, same: bool) -> None:
    """A visitor typing `"}, "admin": true` into a form adds no key, however it is written."""
    body = compiled(tmp_path, '{"name": {{ ' + expression + ' }}, "admin": false}')
    for evil in (BREAKOUT, BREAKOUT + "\\", "\n}\n", "\u2028</script>", '\\"', "{{ 7 * 7 }}"):
        out = json.loads(render(hook(body), {**FORM, "fields": {"name": evil}}))
        assert out["admin"] is False and set(out) == {"name", "admin"}
        assert isinstance(out["name"], str)
        assert out["name"] == evil or not same


def keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys(v) for v in value))
    return set()


def test_the_examples_keep_a_visitors_email_a_string() -> None:
    evil = "a@b.c" + BREAKOUT
    message = {**FORM, "fields": {"email": evil}}
    klaviyo = json.loads(render(examples("klaviyo"), message))
    assert klaviyo["data"]["attributes"]["profiles"]["data"][0]["attributes"]["email"] == evil
    mailchimp = json.loads(render(examples("mailchimp"), message))
    assert mailchimp["email_address"] == evil
    assert "admin" not in keys(klaviyo) | keys(mailchimp)


def test_pasting_text_into_quotes_is_refused_at_load(tmp_path: Path) -> None:
    """The one mistake an author makes with JSON values: quoting them again."""
    problem = refused(tmp_path, '{"email": "{{ fields.get("email") }}"}')
    assert "form.submitted" in problem and "no valid JSON" in problem


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ fields.__class__.__base__.__subclasses__() }}",
        "{{ message.items.__self__ }}",
        "{{ range.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ '{0.__class__}'.format(site) }}",
        "{{ message.update({'event': 'x'}) }}",
        "{{ message.clear() }}",
        "{{ message.pop('id') }}",
        "{% include 'sites/news.json' %}",
        "{% import 'webhooks/t.json.j2' as x %}{}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    ],
)
def test_what_the_sandbox_refuses_is_refused_at_load(tmp_path: Path, template: str) -> None:
    refused(tmp_path, template)


def test_what_the_sandbox_refuses_at_send_is_a_permanent_failure(tmp_path: Path) -> None:
    body = compiled(
        tmp_path,
        '{% if event == "contact.erased" %}{{ contact.__class__ }}{% else %}{}{% endif %}',
        events=("form.submitted",),
    )
    message = dict(sample("contact.erased"))
    before = copy.deepcopy(message)
    with pytest.raises(WebhookBodyInvalid) as err:
        render(hook(body), message)
    assert err.value.webhook == "esp" and "SecurityError" in err.value.reason
    assert message == before


def test_a_template_cannot_change_the_message(tmp_path: Path) -> None:
    body = compiled(
        tmp_path,
        "{% if event == 'x' %}{{ fields.update({'email': 'evil'}) }}{% endif %}{{ fields }}",
    )
    message = copy.deepcopy(FORM)
    render(hook(body), message)
    with pytest.raises(WebhookBodyInvalid):
        render(hook(body), {**message, "event": "x"})
    assert message == FORM


def test_a_body_that_is_no_json_at_send_is_a_permanent_failure(tmp_path: Path) -> None:
    body = compiled(tmp_path, '{% if rule == "broken" %}[{% endif %}{"ok": true}')
    assert json.loads(render(hook(body), FORM)) == {"ok": True}
    with pytest.raises(WebhookBodyInvalid) as err:
        render(hook(body), {**FORM, "rule": "broken"})
    assert "no valid JSON" in str(err.value) and str(err.value).startswith("webhook esp: body:")


def test_a_huge_body_is_a_permanent_failure(tmp_path: Path) -> None:
    body = compiled(tmp_path, "{{ fields }}")
    with pytest.raises(WebhookBodyInvalid, match="over"):
        render(hook(body), {**FORM, "fields": {"x": "a" * bodies.MAX_BODY}})


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ('{"a": 1,}', "no valid JSON"),
        ("{{ fields }} and more", "no valid JSON"),
        ("{{ contatc }}", "'contatc' is undefined"),
        ('{"v": {{ value }}}', "goal.converted"),  # missing from some goals: message.get
        ("{{ range(3) }} {{ fields }}", "no valid JSON"),
        ("{{ fields.values }}", "not a JSON value"),
    ],
)
def test_a_template_that_makes_no_json_is_refused_at_load(
    tmp_path: Path, template: str, said: str
) -> None:
    assert said in refused(tmp_path, template)


def test_refused_at_load_names_each_event_it_fails_for(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        compile_body(tmp_path, write(tmp_path, "{{ rule }}"), WHERE)
    assert [p.path for p in err.value.problems] == [WHERE, WHERE]
    assert {p.expected.split(":")[0] for p in err.value.problems} == {
        "expected JSON or nothing for contact.identified",
        "expected JSON or nothing for contact.erased",
    }
    # ... and only the events the webhook takes are tried.
    assert compile_body(tmp_path, "webhooks/t.json.j2", WHERE, events=("decision.shown",))


def test_nothing_but_whitespace_means_nothing_to_send(tmp_path: Path) -> None:
    body = compiled(
        tmp_path,
        '{% if event == "form.submitted" %}{"e": {{ event }}}{% endif %}\n\n',
        events=bodies.EVENTS,
    )
    assert render(hook(body), FORM) == b'{"e": "form.submitted"}'
    assert render(hook(body), sample("contact.erased")) == b""


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../secret.j2", "webhooks/../../secret.j2", "webhooks\\..\\t", ""]
)
def test_a_path_out_of_the_config_directory_is_refused(tmp_path: Path, path: str) -> None:
    (tmp_path / "secret.j2").write_text("{}")
    config = tmp_path / "config"
    write(config, "{}")
    with pytest.raises(ConfigError) as err:
        compile_body(config, path, WHERE)
    assert err.value.problems[0].path == WHERE
    assert "inside the config directory" in str(err.value)


def test_a_symlink_out_of_the_config_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.j2").write_text("{}")
    config = tmp_path / "config"
    (config / "webhooks").mkdir(parents=True)
    (config / "webhooks" / "out.json.j2").symlink_to(tmp_path / "secret.j2")
    (config / "webhooks" / "dir").symlink_to(tmp_path)
    for path in ("webhooks/out.json.j2", "webhooks/dir/secret.j2"):
        with pytest.raises(ConfigError, match="leads out"):
            compile_body(config, path, WHERE)
    # A symlink that stays inside is fine.
    write(config, "{}", "webhooks/real.json.j2")
    (config / "webhooks" / "in.json.j2").symlink_to(config / "webhooks" / "real.json.j2")
    assert compile_body(config, "webhooks/in.json.j2", WHERE) is not None


def test_a_missing_unreadable_or_broken_template_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a template file"):
        compile_body(tmp_path, "webhooks/none.json.j2", WHERE)
    assert "valid template" in refused(tmp_path, "{% if %}")
    (tmp_path / "webhooks" / "bad.json.j2").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ConfigError, match="UTF-8"):
        compile_body(tmp_path, "webhooks/bad.json.j2", WHERE)
    assert "at most" in refused(tmp_path, "{}" + " " * bodies.MAX_TEMPLATE)


def examples(name: str, config: Path = CONFIG) -> SimpleNamespace:
    return hook(compile_body(config, f"webhooks/{name}.json.j2", WHERE))


def test_klaviyo_example_subscribes_a_consenting_submitter(tmp_path: Path) -> None:
    out = json.loads(render(examples("klaviyo"), FORM))
    assert out == {
        "data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {
                "custom_source": "sitecue: news / newsletter",
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": "ann@example.com",
                                "subscriptions": {
                                    "email": {"marketing": {"consent": "SUBSCRIBED"}}
                                },
                            },
                        }
                    ]
                },
            },
        }
    }
    # With a list id set, the profile is added to that list.
    source = (CONFIG / "webhooks" / "klaviyo.json.j2").read_text()
    assert "{% set list_id = none %}" in source
    write(
        tmp_path, source.replace("list_id = none", 'list_id = "Y6nRLr"'), "webhooks/klaviyo.json.j2"
    )
    out = json.loads(render(examples("klaviyo", tmp_path), FORM))
    assert out["data"]["relationships"] == {"list": {"data": {"type": "list", "id": "Y6nRLr"}}}


def test_mailchimp_example_adds_a_consenting_submitter() -> None:
    out = json.loads(render(examples("mailchimp"), FORM))
    assert out == {
        "email_address": "ann@example.com",
        "status": "pending",
        "tags": ["sitecue", "news", "newsletter"],
        "timestamp_signup": "2025-11-26T00:00:00Z",
    }


@pytest.mark.parametrize("name", ["klaviyo", "mailchimp"])
def test_examples_send_nothing_but_for_a_consenting_submitter(name: str) -> None:
    webhook = examples(name)
    for s in SAMPLES:
        if s["event"] != "form.submitted":
            assert render(webhook, s) == b""
    assert render(webhook, {**FORM, "consents": {}}) == b""
    assert render(webhook, {**FORM, "fields": {}, "contact": None}) == b""
    # The email is the form's field, or else the contact when it is an address.
    out = json.loads(render(webhook, {**FORM, "fields": {"name": "Ann"}}))
    assert "ann@example.com" in json.dumps(out)
    # Tolerant of what a message lacks: only event, site and at are needed.
    assert render(webhook, {"event": "form.submitted", "site": "news", "at": 0}) == b""


def test_the_sandbox_s_jinja2_is_one_without_its_known_escapes() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    needs = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    (jinja,) = [n for n in needs if n.startswith("jinja2")]
    assert jinja == "jinja2>=3.1.6"  # the sandbox escapes of 3.1.4 and 3.1.5 are fixed there
