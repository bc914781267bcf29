"""Personal widgets: templates rendered per visitor, at decide time.

A widget is *personal* when it ``recommend``s products or its template (or one it includes)
reads ``recommendations``, ``attributes`` or ``answers``; every other widget is rendered
once at load (see sitecue.rules). A personal widget renders, in the same sandbox and with
the same compiled template, with its fixed data and:

- ``recommendations``: the products to show (see :func:`product`), from the site's
  recommendation index; a widget with none to show is not shown;
- ``attributes``: the verified contact's declared attributes, every declared key present,
  None when unknown or when the browser is not verified (a claimed identity unlocks none);
- ``answers``: this browser's own form answers, every form field name present, None when
  not answered; the state cookie keeps the fields a personal template reads.

Everything a visitor or a page can influence (answers, products a page described) reaches
the page as escaped text: a personal template may not use ``|safe`` nor turn autoescaping
off, and a product's link is rendered only when it is an http(s) URL or a ``/path``.

At load each personal widget is rendered with empty and with full sample data, so ``sitecue
check`` catches a template that fails on either. ::

    {{ attributes.first_name or answers.name or "there" }}
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import jinja2
import msgspec
from jinja2 import nodes

from .config import AttributeType, FormField, Recommend, SiteConfig, Widget
from .errors import Problem
from .products import bought_keys, recent_keys
from .state import VisitorState
from .store.catalog import Product
from .widgets import TemplateProblem, Templates

__all__ = [
    "NONE_TO_SHOW",
    "NOT_LOADED",
    "PERSONAL",
    "PersonalWidget",
    "Picked",
    "Recommender",
    "compile_personal",
    "product",
    "safe_link",
]

log = logging.getLogger("sitecue")

PERSONAL = ("recommendations", "attributes", "answers")
"""The variables a personal template reads; a widget's data may not use these names."""
NONE_TO_SHOW = "recommendations: none to show"
NOT_LOADED = "recommendations: not loaded yet"
# An absolute http(s) URL with a host, or a path here (not //host nor /\host, which browsers
# read as another host); no control characters anywhere (browsers drop some inside a scheme).
_SAFE_LINK = re.compile(
    r"(?:[hH][tT][tT][pP][sS]?://[^/?#\\\x00-\x20\x7f]+|/(?![/\\]))[^\x00-\x1f\x7f]*"
)
_refused: set[str] = set()  # the products whose unsafe link was logged, each once
_CACHED = 512  # rendered rows of recommendations kept per widget (see PersonalWidget.render)
_CARDS = 4096  # rendered product cards kept per widget (see Cards)
_CARDS_VAR = "_sitecue_cards_"  # what the row's template prints in place of its loop
_CARDS_MARK = "\x00sitecue-cards\x00"  # where the cards go in a fixed row (no data has it)


class Picked(Protocol):
    """A recommended product and the strategy that chose it (sitecue.recommend's Pick)."""

    @property
    def product(self) -> Product: ...

    @property
    def strategy(self) -> str: ...


class Recommender(Protocol):
    """The site's recommendations: ``sitecue.recommend.recommend`` bound to the site's index
    (``functools.partial(recommend, index)``). Pure and fast: called on the decision path."""

    def __call__(
        self, spec: Recommend, current: str | None, viewed: list[bytes], bought: set[bytes], /
    ) -> Sequence[Picked]: ...


def safe_link(url: str | None) -> bool:
    """May ``url`` be a link or an image in a widget: an absolute http(s) URL with a host, or
    a path on this site (``/…``, not ``//`` nor ``/\\``, which browsers read as another host)?
    Anything else (``javascript:``, ``data:``, a relative or malformed URL) is refused:
    escaping keeps text out of the markup, but a ``javascript:`` href runs as it is."""
    return url is not None and _SAFE_LINK.fullmatch(url) is not None


def product(pick: Picked, extras: Iterable[str]) -> dict[str, Any] | None:
    """What a template sees of a recommended product: id, name, url, image, price,
    category, in_stock, strategy and every declared extra field (None when unknown); None
    (the product is left out) when its link is not safe to render. An unsafe image is
    dropped, the product kept."""
    item = pick.product
    if not safe_link(item.url):
        if len(_refused) < 1000 and item.id not in _refused:  # once a product, not a flood
            _refused.add(item.id)
            log.warning("product %r not recommended: its url is not http(s) nor a /path", item.id)
        return None
    shown = {
        "id": item.id,
        "name": item.name,
        "url": item.url,
        "image": item.image if safe_link(item.image) else None,
        "price": item.price,
        "category": item.category,
        "in_stock": item.in_stock,
        "strategy": pick.strategy,
    }
    for name in extras:
        shown[name] = item.extra.get(name)
    return shown


@dataclass(frozen=True, eq=False)
class Cards:
    """A row template split where it loops over the products: ``row``, the template with
    its loop ``{% for p in recommendations %}…{% endfor %}`` printing the cards' markup
    instead, and ``card``, the loop's body (after the template's own ``{% set %}``s) for
    one product ``p``. A card then depends only on its product, its strategy and the
    widget's fixed data, so it is rendered once and kept; a new row is mostly cards
    rendered before. Split only where that is sure to render the same markup (see
    :func:`split_cards`); the cards are autoescaped like the rest, the row's template
    printing them as the markup they already are."""

    row: jinja2.Template
    card: jinja2.Template
    target: str
    # The row reads no per-visitor variable outside its loop: all but the cards is the
    # same markup on every row of a widget, rendered once (see row_markup).
    fixed: bool = False


def _reads(node: nodes.Node) -> set[str]:
    """The names ``node`` (itself included) reads."""
    found = [node, *node.find_all(nodes.Name)]
    return {n.name for n in found if isinstance(n, nodes.Name) and n.ctx == "load"}


def split_cards(template: jinja2.Template, name: str) -> Cards | None:
    """``template`` (of ``name``) split into its row and its card, or None where it is not
    of the form that allows it: one top-level loop over ``recommendations`` (one loop
    variable, no ``else``, filter nor recursion) whose body reads no ``loop``, sets
    nothing, and reads no per-visitor variable but its product; before it, only text,
    output and ``{% set %}``s reading none of those; no include, import, macro nor block
    anywhere (the card would lose what they bring)."""
    env = template.environment
    if env.loader is None:
        return None
    try:
        source = env.loader.get_source(env, name)[0]
        whole, card_ast = env.parse(source, name), env.parse(source, name)
    except jinja2.TemplateError:
        return None
    banned = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport, nodes.Macro,
              nodes.CallBlock, nodes.Block, nodes.EvalContextModifier)  # fmt: skip
    if any(True for _ in whole.find_all(banned)) or _CARDS_VAR in _reads(whole):
        return None
    every_loop = list(whole.find_all(nodes.For))
    at = next(
        (
            i
            for i, n in enumerate(whole.body)
            if isinstance(n, nodes.For) and "recommendations" in _reads(n.iter)
        ),
        None,
    )
    if at is None:
        return None
    loop = whole.body[at]
    assert isinstance(loop, nodes.For)
    if (
        not isinstance(loop.iter, nodes.Name)
        or loop.iter.name != "recommendations"
        or not isinstance(loop.target, nodes.Name)
        or loop.else_
        or loop.test is not None
        or loop.recursive
        or sum(1 for f in every_loop if "recommendations" in _reads(f.iter)) != 1
    ):
        return None
    body = nodes.Template(loop.body)
    if any(True for _ in body.find_all((nodes.Assign, nodes.AssignBlock, nodes.For))) or _reads(
        body
    ) & {"loop", *PERSONAL}:
        return None
    sets = [n for n in whole.body[:at] if isinstance(n, (nodes.Assign, nodes.AssignBlock))]
    if any(_reads(n) & {*PERSONAL, loop.target.name} for n in sets):
        return None
    lineno = loop.lineno
    # The row: the loop replaced by the cards, already escaped markup.
    printed = nodes.MarkSafe(nodes.Name(_CARDS_VAR, "load", lineno=lineno), lineno=lineno)
    whole.body[at] = nodes.Output([printed], lineno=lineno)
    # The card: the template's sets (the same ones, parsed again), then the loop's body.
    card_loop = card_ast.body[at]
    assert isinstance(card_loop, nodes.For)
    card_sets = [n for n in card_ast.body[:at] if isinstance(n, (nodes.Assign, nodes.AssignBlock))]
    card_ast.body = [*card_sets, *card_loop.body]
    fixed = not (_reads(whole) & set(PERSONAL))
    made = []
    for ast in (whole, card_ast):
        ast.set_environment(env)
        code = env.compile(ast, name, template.filename)
        compiled = env.template_class.from_code(env, code, dict(template.globals))
        compiled.globals = dict(template.globals)
        made.append(compiled)
    return Cards(made[0], made[1], loop.target.name, fixed)


@dataclass(frozen=True, eq=False)
class PersonalWidget:
    """One variant's personal widget: its compiled template, its fixed data, what it
    recommends, and the names its per-visitor variables always have."""

    name: str
    template: jinja2.Template
    data: dict[str, Any]
    recommend: Recommend | None
    attributes: tuple[str, ...]  # every declared attribute
    answers: tuple[str, ...]  # every form field name
    extras: tuple[str, ...]  # the catalog's declared product fields
    # A widget reading neither attributes nor answers renders the same row of products the
    # same way for everyone: its html is kept by the row (the least recently used go past
    # _CACHED), so a popular product page does not render its "bought together" row on every
    # view. A row is keyed by the identity of its (frozen) products and their strategies,
    # and holds the picks, so no key's object is freed and reused while the row is kept; an
    # index reloaded with changed products makes new rows. Rows with a visitor's own
    # attributes or answers are never kept.
    shared: bool = False
    # A shared widget whose template splits into row and card (see Cards) keeps its cards,
    # each by the identity of its (frozen) product, held, and its strategy: the product as
    # the template sees it (None: left out) and its card's markup.
    cards: Cards | None = None
    _rows: OrderedDict[tuple[tuple[int, str], ...], tuple[str, Sequence[Picked]]] = field(
        default_factory=OrderedDict, repr=False
    )
    _cards: dict[tuple[int, str], tuple[Product, dict[str, Any] | None, str]] = field(
        default_factory=dict, repr=False
    )
    # A fixed row's markup before and after its cards, once rendered (see row_markup).
    _frame: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def with_data(self, data: dict[str, Any]) -> PersonalWidget:
        """The same widget for another rule and variant (its own fixed data, its own rows)."""
        return PersonalWidget(
            self.name, self.template, data, self.recommend, self.attributes, self.answers,
            self.extras, self.shared, self.cards,
        )  # fmt: skip

    def render(
        self, state: VisitorState, current: str | None, recommender: Recommender | None
    ) -> tuple[str | None, str | None]:
        """``(html, None)``, or ``(None, why it is not shown)``: no recommendations to show
        (or the index is not loaded yet), or a template that failed on this visitor's data
        (logged; the rest of the decision goes on). ``current`` is the product on the page,
        as sitecue.catalog read it."""
        data = dict(self.data)
        row: tuple[tuple[int, str], ...] = ()
        picks: Sequence[Picked] = ()
        if self.recommend is not None:
            if recommender is None:
                return None, NOT_LOADED
            picks = recommender(self.recommend, current, recent_keys(state), bought_keys(state))
            if self.shared and picks:
                row = tuple((id(pick.product), pick.strategy) for pick in picks)
                kept = self._rows.get(row)
                if kept is not None:
                    self._rows.move_to_end(row)
                    return kept[0], None
            if self.shared and self.cards is not None:
                return self._render_cards(data, picks, row, self.cards, self.recommend.limit)
            shown = [p for pick in picks if (p := product(pick, self.extras)) is not None]
            if not shown:
                return None, NONE_TO_SHOW
            data["recommendations"] = shown[: self.recommend.limit]
        else:
            data["recommendations"] = []
        verified = state.verified
        data["attributes"] = {
            k: state.attributes.get(k) if verified else None for k in self.attributes
        }
        data["answers"] = {k: state.answers.get(k) for k in self.answers}
        try:
            html = self.template.render(data).strip()
        except Exception as err:  # the config's code failing on one visitor's data
            log.warning("widget %s failed to render: %s: %s", self.name, type(err).__name__, err)
            return None, f"template: {type(err).__name__}"
        if row:
            self._keep(row, html, picks)
        return html, None

    def _keep(self, row: tuple[tuple[int, str], ...], html: str, picks: Sequence[Picked]) -> None:
        self._rows[row] = (html, tuple(picks))
        if len(self._rows) > _CACHED:
            self._rows.popitem(last=False)

    def _render_cards(
        self,
        data: dict[str, Any],
        picks: Sequence[Picked],
        row: tuple[tuple[int, str], ...],
        cards: Cards,
        limit: int,
    ) -> tuple[str | None, str | None]:
        """A shared widget's row from its cards, each rendered once (see Cards)."""
        shown: list[dict[str, Any]] = []
        markup: list[str] = []
        target = cards.target
        try:
            for pick in picks:
                if len(shown) == limit:
                    break
                item = pick.product
                key = (id(item), pick.strategy)
                kept = self._cards.get(key)
                if kept is None or kept[0] is not item:
                    seen = product(pick, self.extras)
                    card = "" if seen is None else cards.card.render({**data, target: seen})
                    kept = (item, seen, card)
                    self._cards[key] = kept
                    if len(self._cards) > _CARDS:
                        del self._cards[next(iter(self._cards))]  # the oldest kept
                if kept[1] is not None:
                    shown.append(kept[1])
                    markup.append(kept[2])
            if not shown:
                return None, NONE_TO_SHOW
            data["recommendations"] = shown
            data["attributes"] = dict.fromkeys(self.attributes)
            data["answers"] = dict.fromkeys(self.answers)
            html = row_markup(cards, data, "".join(markup), self._frame)
        except Exception as err:  # the config's code failing on one visitor's data
            log.warning("widget %s failed to render: %s: %s", self.name, type(err).__name__, err)
            return None, f"template: {type(err).__name__}"
        if row:
            self._keep(row, html, picks)
        return html, None


_SAMPLE_ATTRIBUTE: dict[AttributeType, Any] = {"string": "Sample", "number": 1.5, "boolean": True}


def _sample_answer(form_field: FormField) -> Any:
    kind = form_field.type
    if kind == "email":
        return "reader@example.com"
    if kind == "phone":
        return "+46701234567"
    if kind == "number":
        return form_field.min if form_field.min is not None else 1
    if kind == "choice":
        options = form_field.options or ["option"]
        return list(options) if form_field.multiple else options[0]
    if kind == "checkbox":
        return True
    return "Sample answer"


def _sample_products(config: SiteConfig, spec: Recommend, full: bool) -> list[dict[str, Any]]:
    """Products as a template may see them: with every field set (``full``, a full row),
    or one with only what every product has (id, name, url, in_stock, strategy)."""
    extras = config.catalog.fields if config.catalog is not None else {}
    origin = config.origins[0] if config.origins else "https://shop.example"
    rows = []
    for i in range(spec.limit if full else 1):
        rows.append(
            {
                "id": f"sample-{i + 1}",
                "name": f"Sample product {i + 1}",
                "url": f"{origin}/products/sample-{i + 1}",
                "image": f"/images/sample-{i + 1}.svg" if full else None,
                "price": 1234.5 if full else None,
                "category": "sample" if full else None,
                "in_stock": True,
                "strategy": spec.strategies[i % len(spec.strategies)],
                **{k: _SAMPLE_ATTRIBUTE[t] if full else None for k, t in extras.items()},
            }
        )
    return rows


def compile_personal(
    name: str,
    widget: Widget,
    config: SiteConfig,
    templates: Templates,
    fields: dict[str, FormField],
    answers: dict[str, FormField],
    problems: list[Problem],
) -> PersonalWidget | None:
    """The personal widget ``name`` (its template compiled), or None for a widget rendered
    once at load. Checks what it reads (declared attributes, form fields, a ``recommend``
    section for ``recommendations`` and a catalog for it), that it renders nothing as
    markup, and that it renders with empty and with full sample data; records in
    ``answers`` the form fields it reads, so the cookie keeps them. Appends every mistake to
    ``problems`` (the widget is then None)."""
    at = f"$.widgets.{name}"
    before = len(problems)
    for key in widget.data:
        if key in PERSONAL:
            problems.append(
                Problem(
                    f"{at}.data.{key}",
                    f"expected a key other than {', '.join(PERSONAL)}: the template reads"
                    " those per visitor",
                )
            )
    reads = templates.reads(widget.template, PERSONAL)
    if widget.recommend is None and not reads.names:
        return None
    if "recommendations" in reads.names and widget.recommend is None:
        problems.append(
            Problem(
                f"{at}.recommend",
                "expected which products to recommend (a recommend section) for a template"
                " that reads recommendations",
            )
        )
    if widget.recommend is not None:
        if config.catalog is None:
            problems.append(
                Problem(f"{at}.recommend", "expected a site with a catalog section to recommend")
            )
        if "recommendations" not in reads.names:
            problems.append(
                Problem(
                    f"{at}.template",
                    "expected a template that shows the recommendations (reads recommendations)",
                )
            )
    for unsafe in reads.unsafe:
        problems.append(
            Problem(
                f"{at}.template",
                f"expected a template that renders per-visitor data as text only, not {unsafe}",
            )
        )
    declared = {"attributes": list(config.attributes), "answers": list(fields)}
    meaning = {"attributes": "declared attribute", "answers": "form field"}
    for variable, known in declared.items():
        keys = reads.keys.get(variable, frozenset())
        for key in sorted(keys or ()):
            if key not in known:
                listed = ", ".join(known) or "none are declared"
                problems.append(
                    Problem(
                        f"{at}.template",
                        f"expected {variable}.<{meaning[variable]}> ({listed}), got"
                        f" {variable}.{key}",
                    )
                )
    if len(problems) > before:
        return None
    read_answers = reads.keys.get("answers", frozenset())
    for key in fields if read_answers is None else read_answers:
        answers[key] = fields[key]  # kept in the cookie: this template reads it
    data = {**widget.data, "rule": "", "variant": "", "widget": name}
    data["form"] = msgspec.to_builtins(widget.form) if widget.form is not None else None
    samples = []
    for full in (False, True):
        sample = {
            **data,
            "recommendations": _sample_products(config, widget.recommend, full)
            if widget.recommend is not None
            else [],
            "attributes": {
                k: _SAMPLE_ATTRIBUTE[t] if full else None for k, t in config.attributes.items()
            },
            "answers": {k: _sample_answer(f) if full else None for k, f in fields.items()},
        }
        samples.append(sample)
        try:
            html = templates.render(widget.template, sample)
        except TemplateProblem as err:
            which = "full" if full else "empty"
            problems.append(Problem(f"{at}.template", f"expected {err}, with {which} sample data"))
            return None
        if full and widget.form is not None and "data-sc-form" not in html:
            problems.append(
                Problem(
                    f"{at}.template",
                    "expected a template that renders the widget's form ({% include"
                    ' "widgets/_form.html" %})',
                )
            )
            return None
    catalog = config.catalog
    template = templates.compile(widget.template)
    shared = not (reads.names & {"attributes", "answers"})
    cards = None
    if shared and widget.recommend is not None:
        cards = split_cards(template, widget.template)
        if cards is not None and not _same_markup(template, cards, samples):
            cards = None  # a form the split misjudged: the whole template it is
    return PersonalWidget(
        name,
        template,
        data,
        widget.recommend,
        tuple(config.attributes),
        tuple(fields),
        tuple(catalog.fields) if catalog is not None else (),
        shared=shared,
        cards=cards,
    )


def row_markup(
    cards: Cards, data: dict[str, Any], markup: str, frame: list[tuple[str, str]]
) -> str:
    """The row of ``cards`` around the cards' ``markup``: a fixed row's frame (the markup
    before and after the cards, rendered once into ``frame``), else the row rendered."""
    if cards.fixed:
        if not frame:
            parts = cards.row.render({**data, _CARDS_VAR: _CARDS_MARK}).split(_CARDS_MARK)
            if len(parts) == 2:
                frame.append((parts[0], parts[1]))
        if frame:
            before, after = frame[0]
            return (before + markup + after).strip()
    return cards.row.render({**data, _CARDS_VAR: markup}).strip()


def _same_markup(template: jinja2.Template, cards: Cards, samples: list[dict[str, Any]]) -> bool:
    """Do ``cards`` render each sample exactly as ``template`` does (a check at load, so a
    split can never change what a page shows)?"""
    try:
        for sample in samples:
            markup = "".join(
                cards.card.render({**sample, cards.target: p}) for p in sample["recommendations"]
            )
            if row_markup(cards, sample, markup, []) != template.render(sample).strip():
                return False
    except Exception:  # the split's templates failing where the whole one does not
        return False
    return True
