"""A site's webhooks as config: the secret read from the environment (missing: a check
error naming the field), URLs that would leak credentials or go out in the clear refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sitecue.cli import main
from sitecue.errors import ConfigError
from webhook_sites import SECRET, SECRET_ENV, shop, webhook


def problems(monkeypatch: pytest.MonkeyPatch, root: Path, *hooks: dict[str, Any]) -> list[str]:
    try:
        shop(monkeypatch, root, *hooks)
    except ConfigError as err:
        return [f"{p.path}: {p.expected}" for p in err.problems]
    return []


def test_a_webhook_compiles_with_its_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "b.j2").write_text('{"e": {{ event }}}')
    (hook,) = shop(monkeypatch, tmp_path, webhook("https://hooks.example/in", body="b.j2")).webhooks
    assert (hook.site, hook.id, hook.target) == ("shop", "esp", "shop/esp")
    assert hook.secret == SECRET.encode() and hook.body is not None and hook.body.path == "b.j2"
    assert "decision.shown" not in hook.events  # opt-in: only when listed


def test_a_missing_or_short_secret_is_a_check_error_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sites").mkdir()
    site = tmp_path / "sites" / "shop.json"
    config = {"site": "shop", "origins": ["https://shop.example"]}
    site.write_text(json.dumps({**config, "webhooks": [webhook("https://hooks.example/")]}))
    monkeypatch.delenv(SECRET_ENV, raising=False)
    assert main(["check", str(site)]) == 1
    err = capsys.readouterr().err
    assert f"{site}: $.webhooks[0].secret_env: expected the environment variable" in err
    assert f"{SECRET_ENV} to hold the webhook's secret" in err and "it is not set" in err
    monkeypatch.setenv(SECRET_ENV, "short")
    assert main(["check", str(site)]) == 1
    assert "holds fewer than 16 characters" in capsys.readouterr().err
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert main(["check", str(site)]) == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://hooks.example/in", "https (plain http only to localhost or 127.0.0.1)"),
        ("https://user:pass@hooks.example/in", "a URL without credentials"),
        ("https://token@hooks.example/in", "a URL without credentials"),
        ("ftp://hooks.example/in", "an https:// URL with a host"),
        ("https:///in", "an https:// URL with a host"),
        ("https://hooks.example:99999/in", "a URL such as"),
        ("https://hooks.example/in#x", "a URL without a #fragment"),
        ("https://hooks.example/a b", "a URL without a #fragment or spaces"),
        ("https://hooks\x01.example/in", "a URL a request can be sent to"),
        ("https://\u2488.example/in", "a URL a request can be sent to"),  # no IDNA host
    ],
)
def test_urls_that_leak_or_go_out_in_the_clear_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, expected: str
) -> None:
    (problem,) = problems(monkeypatch, tmp_path, webhook(url))
    assert problem.startswith(f"$.webhooks[0].url: expected {expected}")


@pytest.mark.parametrize("url", ["http://localhost:8080/in", "http://127.0.0.1/in"])
def test_plain_http_to_this_machine_is_allowed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    assert problems(monkeypatch, tmp_path, webhook(url)) == []


def test_ids_are_unique_and_events_from_the_fixed_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "https://hooks.example/in"
    assert problems(monkeypatch, tmp_path, webhook(url), webhook(url)) == [
        "$.webhooks[1].id: expected a unique id, 'esp' is used twice"
    ]
    with pytest.raises(ConfigError) as err:
        shop(monkeypatch, tmp_path, webhook(url, events=["form.sent"]))
    assert err.value.problems[0].path == "$.webhooks[0].events[0]"


def test_a_body_template_that_makes_no_json_is_a_check_error_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "b.j2").write_text('{"email": "{{ contact }}"}')  # a value quoted again
    found = problems(monkeypatch, tmp_path, webhook("https://hooks.example/", body="b.j2"))
    assert found and all(p.startswith("$.webhooks[0].body: expected JSON") for p in found)
    assert problems(monkeypatch, tmp_path, webhook("https://hooks.example/", body="../x.j2"))


def test_headers_come_from_the_config_and_secret_ones_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SITECUE_WEBHOOK_ESP_AUTH", "Klaviyo-API-Key pk_test")
    extra = {
        "headers": {"Revision": "2024-10-15"},
        "headers_env": {"Authorization": "SITECUE_WEBHOOK_ESP_AUTH"},
    }
    (hook,) = shop(monkeypatch, tmp_path, webhook("https://hooks.example/", **extra)).webhooks
    assert hook.headers == (
        ("revision", "2024-10-15"),
        ("authorization", "Klaviyo-API-Key pk_test"),
    )


AT = "$.webhooks[0]"


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"headers": {"Sitecue-Signature": "t=1,v1=00"}}, f"{AT}.headers.Sitecue-Signature"),
        ({"headers": {"idempotency-key": "x"}}, f"{AT}.headers.idempotency-key"),
        ({"headers": {"bad name": "x"}}, f"{AT}.headers.bad name"),
        ({"headers": {"x-a": "1\r\nx-b: 2"}}, f"{AT}.headers.x-a"),
        ({"headers": {"x-a": "caf\u00e9"}}, f"{AT}.headers.x-a"),
        ({"headers": {"x-a": " padded"}}, f"{AT}.headers.x-a"),
        ({"headers": {"x-a": "a\x7fb"}}, f"{AT}.headers.x-a"),
        ({"headers_env": {"auth": "SITECUE_WEBHOOK_TEST_UNSET"}}, f"{AT}.headers_env.auth"),
        ({"headers": {"x": "1"}, "headers_env": {"X": "SITECUE_WEBHOOK_TEST_AUTH"}},
         f"{AT}.headers_env.X"),
    ],
)  # fmt: skip
def test_a_header_that_would_forge_ours_split_a_line_or_is_missing_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: dict[str, Any], path: str
) -> None:
    monkeypatch.setenv("SITECUE_WEBHOOK_TEST_AUTH", "Bearer x")
    monkeypatch.delenv("SITECUE_WEBHOOK_TEST_UNSET", raising=False)
    found = problems(monkeypatch, tmp_path, webhook("https://hooks.example/", **extra))
    assert [p.split(": ", 1)[0] for p in found] == [path]


@pytest.mark.parametrize(
    "var",
    ["SITECUE_SECRETS", "SITECUE_DB", "DATABASE_URL", "PGPASSWORD", SECRET_ENV,
     "SITECUE_WEBHOOK_OTHER_SECRET", "SITECUE_WEBHOOK_ESP_SIGNING"],
)  # fmt: skip
def test_a_header_from_the_environment_cannot_send_the_servers_settings_or_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, var: str
) -> None:
    monkeypatch.setenv(var, "server-only-value")
    other = webhook("https://other.example/", id="other", secret_env="SITECUE_WEBHOOK_ESP_SIGNING")
    monkeypatch.setenv("SITECUE_WEBHOOK_ESP_SIGNING", SECRET)
    hook = webhook("https://hooks.example/", headers_env={"authorization": var})
    found = problems(monkeypatch, tmp_path, hook, other)
    assert [p.split(": ", 1)[0] for p in found] == [f"{AT}.headers_env.authorization"]
    assert "never sent" in found[0]
