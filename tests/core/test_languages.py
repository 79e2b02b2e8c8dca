"""The owner's language: the Settings form and ``updateSettings`` answer in the language of the page
(the Dashboard's ``localeChanged``, sent as ``X-Dashboard-Locale``) or of the API caller
(``Accept-Language``), plural forms right; any language we have no catalog for reads English; the
management commands follow ``--language``."""

import json
from html import unescape
from io import StringIO

import pytest
from django.core.management import call_command

from saleor_cart_recovery.languages import from_accept_language, supported

from .test_settings_editing import API, DASHBOARD, OWNER, UPDATE, field_html, form_of, stored


def save_form(client, locale, **changes):
    return client.post(
        DASHBOARD + "save-settings",
        form_of(**changes),
        HTTP_AUTHORIZATION=f"Bearer {OWNER}",
        HTTP_X_DASHBOARD_LOCALE=locale,
    )


def update(client, language, changes):
    response = client.post(
        API,
        data=json.dumps({"query": UPDATE, "variables": {"input": changes}}),
        content_type="application/json",
        HTTP_X_TEST_STAFF="MANAGE_PLUGINS",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]["updateSettings"]["errors"]


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("tr", "tr"),
        ("tr-TR", "tr"),
        ("de_AT", "de"),
        ("DE", "de"),
        ("fr-FR", "en"),
        ("pt-BR", "en"),
        ("", "en"),
        (None, "en"),
    ],
    ids=lambda value: f"{value}_case",
)
def test_a_locale_maps_to_a_catalog_or_english(code, language):
    assert supported(code) == language


def test_accept_language_takes_the_first_language_with_a_catalog():
    assert from_accept_language("fr-FR,fr;q=0.9,tr;q=0.8,en;q=0.5") == "tr"
    assert from_accept_language("de-CH, en;q=0.5") == "de"
    assert from_accept_language("fr, pt") == "en"
    assert from_accept_language("") == "en"


def test_the_settings_form_answers_in_turkish_with_the_plural_right(client, channel):
    before = stored()
    # when two settings are wrong on a page in Turkish
    response = save_form(client, "tr-TR", cutoff="soon", holdout_percent="60")
    # then nothing is stored and every message, labels included, is Turkish
    assert response.status_code == 400 and stored() == before
    html = unescape(response.content.decode())
    assert "2 ayar geçerli değil: hiçbir şey kaydedilmedi." in html
    assert "Terk edilme eşiği: 'soon' bir süre değil; s, m, h veya d ile bir sayı kullanın" in unescape(
        field_html(html, "cutoff")
    )
    assert "Kontrol grubu payı: 0 ile 50 arasında olmalı" in unescape(field_html(html, "holdout_percent"))
    assert "Ayarları kaydet" in html and "Save settings" not in html and "not valid" not in html
    # one bad setting: Turkish keeps the noun singular after a number, as its catalog says
    html = unescape(save_form(client, "tr", cutoff="soon").content.decode())
    assert "1 ayar geçerli değil: hiçbir şey kaydedilmedi." in html


def test_the_settings_form_answers_in_german_with_both_plural_forms(client, channel):
    one = unescape(save_form(client, "de-DE", cutoff="soon").content.decode())
    assert "1 Einstellung ist ungültig: Es wurde nichts gespeichert." in one
    assert "Abbruchschwelle: „soon“ ist keine Dauer" in one
    two = unescape(save_form(client, "de-DE", cutoff="soon", holdout_percent="60").content.decode())
    assert "2 Einstellungen sind ungültig: Es wurde nichts gespeichert." in two


def test_a_language_without_a_catalog_reads_english(client, channel):
    html = unescape(save_form(client, "fr-FR", cutoff="soon").content.decode())
    assert "1 setting is not valid: nothing was saved." in html
    assert "Abandonment cutoff: 'soon' is not a duration" in html


def test_a_saved_form_says_so_in_turkish(client, channel):
    html = unescape(save_form(client, "tr", cutoff="2h").content.decode())
    assert "Kaydedildi. Sepet Kurtarma Main kanalında etkin." in html
    assert stored()[1]["cutoff"] == "2h"


def test_update_settings_answers_in_the_callers_language(client, channel):
    before = stored()
    changes = [
        {"name": "cutoff", "value": "soon"},
        {"name": "schedule", "value": "1h, 1d, 3d, 4d, 5d, 6d, 7d, 8d, 9d, 10d, 11d"},
    ]
    errors = {error["field"]: error["message"] for error in update(client, "tr-TR,tr;q=0.9", changes)}
    assert errors["cutoff"].startswith("Terk edilme eşiği: 'soon' bir süre değil")
    assert errors["schedule"] == "Hatırlatma zamanlaması: en fazla 10 adıma izin verilir, 11 verildi"
    assert stored() == before
    german = {error["field"]: error["message"] for error in update(client, "de", changes)}
    assert german["schedule"] == "Erinnerungszeitplan: höchstens 10 Schritte sind erlaubt, angegeben sind 11"
    english = {error["field"]: error["message"] for error in update(client, "fr", changes)}
    assert english["schedule"] == "Reminder schedule: at most 10 steps are allowed, got 11"


def test_an_unknown_setting_is_named_in_turkish(client, channel):
    errors = update(client, "tr", [{"name": "colour", "value": "red"}])
    assert errors == [{"field": "colour", "message": "'colour' Sepet Kurtarma'nın bir ayarı değil"}]


def test_commands_speak_the_language_asked_for(db):
    out = StringIO()
    call_command("cart_recovery_dispatch", language="tr", stdout=out)
    assert "0 ileti planlandı" in out.getvalue() and "planned" not in out.getvalue()
    out = StringIO()
    call_command("cart_recovery_dispatch", language="de", stdout=out)
    assert "0 Nachrichten geplant" in out.getvalue()
    out = StringIO()
    call_command("cart_recovery_dispatch", stdout=out)  # LANGUAGE_CODE: English
    assert "planned 0 messages" in out.getvalue()
