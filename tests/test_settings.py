"""Settings: the keyring's variables, read as an operator writes them, failing fast."""

from __future__ import annotations

import pytest

from sitecue.keyring import fingerprint
from sitecue.settings import Settings, SettingsError

OLD = "the-old-secret-of-2025-0000"
NEW = "the-new-secret-of-2026-0000"


def load(env: dict[str, str], **values: str) -> Settings:
    return Settings.load(env={**env, **values})


def test_named_keys_the_first_signs_unless_the_signing_key_names_another(
    env: dict[str, str],
) -> None:
    both = load(env, SITECUE_SECRETS=f"k2025:{OLD},k2026:{NEW}")
    assert (both.key_names, both.secrets) == (("k2025", "k2026"), [OLD, NEW])
    switched = load(env, SITECUE_SECRETS=f"k2025:{OLD},k2026:{NEW}", SITECUE_SIGNING_KEY="k2026")
    assert (switched.key_names, switched.secrets) == (("k2026", "k2025"), [NEW, OLD])


def test_bare_secrets_are_named_by_their_fingerprint(env: dict[str, str]) -> None:
    settings = load(env, SITECUE_SECRETS=f"{OLD},{NEW}", SITECUE_SIGNING_KEY=fingerprint(NEW))
    assert settings.key_names == (fingerprint(NEW), fingerprint(OLD))
    assert settings.secrets == [NEW, OLD]
    # A secret with a colon after something that is no name is read whole, as before names.
    odd = "p@ss:word-of-some-length"
    assert load(env, SITECUE_SECRETS=odd).secrets == [odd]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SITECUE_SECRETS": "k1:short"}, "SITECUE_SECRETS: expected secrets of at least 16"),
        ({"SITECUE_SECRETS": f"k1:{OLD},k1:{NEW}"}, "expected each key once, got two named k1"),
        ({"SITECUE_SECRETS": f"a:{OLD},b:{OLD}"}, "expected each secret once, got key b's"),
        (
            {"SITECUE_SECRETS": f"a:{OLD},b:{NEW}", "SITECUE_SIGNING_KEY": "c"},
            "SITECUE_SIGNING_KEY: expected the name (or fingerprint) of one of SITECUE_SECRETS'"
            " keys (a, b), got 'c'",
        ),
    ],
)
def test_a_bad_keyring_fails_at_start_naming_the_variable(
    env: dict[str, str], values: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(env, **values)
    assert message in str(caught.value)
    assert OLD not in str(caught.value) and NEW not in str(caught.value)


def test_a_secret_pasted_as_the_signing_key_is_not_repeated_in_the_error(
    env: dict[str, str],
) -> None:
    with pytest.raises(SettingsError, match="got a value that names none") as caught:
        load(env, SITECUE_SECRETS=f"a:{OLD},b:{NEW}", SITECUE_SIGNING_KEY=NEW)
    assert NEW not in str(caught.value)
