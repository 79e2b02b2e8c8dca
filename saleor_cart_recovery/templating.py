"""The one Django template engine over the package's ``templates/`` directory.

Emails (:mod:`.email.render`, which adds CSS inlining) and the report page render through it; it
is independent of the host's ``TEMPLATES`` setting, so a shop's template overrides never change
what the plugin sends. Autoescaping is on: templates get plain data only (invariant 7). Django's
``i18n`` and ``l10n`` tags are built in (``{% translate %}``, ``{% blocktranslate %}``,
``{% localize off %}``): owner-facing pages render inside :func:`..languages.speaking`, which picks
the language; numbers for people come formatted by Babel, so a template keeps Django from
localizing the ones meant for machines (SVG coordinates, CSS widths).
"""

from functools import cache
from importlib import resources

from django.template import Context, Engine, Template

TEMPLATE_DIR = resources.files("saleor_cart_recovery") / "templates"


@cache
def engine() -> Engine:
    return Engine(
        dirs=[str(TEMPLATE_DIR)],
        autoescape=True,
        builtins=["django.templatetags.i18n", "django.templatetags.l10n"],
    )


def template_source(name: str) -> str:
    return (TEMPLATE_DIR / name).read_text(encoding="utf-8")


def compile_template(source: str) -> Template:
    return engine().from_string(source)


def render(name: str, context: dict) -> str:
    return engine().get_template(name).render(Context(context))
