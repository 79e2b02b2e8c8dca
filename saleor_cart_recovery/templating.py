"""The one Django template engine over the package's ``templates/`` directory.

Emails (:mod:`.email.render`, which adds CSS inlining) and the report page render through it; it
is independent of the host's ``TEMPLATES`` setting, so a shop's template overrides never change
what the plugin sends. Autoescaping is on: templates get plain data only (invariant 7). Django's
``i18n`` tags are built in (``{% translate %}``, ``{% blocktranslate %}``): owner-facing pages render
inside :func:`..languages.speaking`, which picks the language.
"""

from functools import cache
from importlib import resources

from django.template import Context, Engine, Template

TEMPLATE_DIR = resources.files("saleor_cart_recovery") / "templates"


@cache
def engine() -> Engine:
    return Engine(dirs=[str(TEMPLATE_DIR)], autoescape=True, builtins=["django.templatetags.i18n"])


def template_source(name: str) -> str:
    return (TEMPLATE_DIR / name).read_text(encoding="utf-8")


def compile_template(source: str) -> Template:
    return engine().from_string(source)


def render(name: str, context: dict) -> str:
    return engine().get_template(name).render(Context(context))
