"""Compile a site config once into the form a page view evaluates.

Here every reference is checked (triggers and windows named in conditions, widgets named by
variants, templates on disk), conditions become closures, weights become bucket ranges, and
the site learns what its rules read, so the state cookie keeps nothing else. Every mistake is
reported at once, with its JSON path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from .audiences import Audiences, compile_audiences, page_groups
from .bucketing import bucket_ranges
from .conditions import Predicate, attribute_paths, compile_condition
from .config import (
    WINDOW_PATTERN,
    Form,
    FormField,
    Rule,
    SiteConfig,
    Trigger,
    Variant,
    Widget,
    Window,
    read_site,
)
from .errors import ConditionError, ConfigError, Problem
from .forms import form_problems, largest_answer
from .frequency import FrequencyCap, compile_frequency
from .keyring import Keyring
from .personal import PersonalWidget, compile_personal
from .products import catalog_triggers
from .protocol import TriggerSpec
from .reading import METRICS
from .webhooks.targets import CompiledWebhook, compile_webhooks
from .widgets import TemplateProblem, Templates

__all__ = [
    "CONTEXT_ROOTS",
    "CompiledRule",
    "CompiledSite",
    "compile_file",
    "compile_site",
    "load_sites",
]

CONTEXT_ROOTS = (
    "page",
    "utm",
    "visitor",
    "attributes",
    "triggers",
    "sums",
    "time",
    "device",
    "reading",
)
"""What a condition can read; see the decision engine for each root's fields."""

# The parameters each kind of trigger takes besides its kind, and whether it must have them.
_TRIGGER_PARAMS: dict[str, dict[str, bool]] = {
    "pageview": {"path": False},
    "click": {"selector": True},
    "change": {"selector": True},
    "visible": {"selector": True},
    "video": {"selector": False},
    "scroll": {"percent": True},
    "time": {"seconds": True},
    "inactivity": {"seconds": True},
}
_TRIGGER_MEANING = {
    "selector": "a CSS selector",
    "path": "a condition on the path",
    "percent": "a scroll depth from 1 to 100",
    "seconds": "a number of seconds from 1 to 3600",
}
# What a condition cannot know without the visitor's stored state.
_STATEFUL_ROOTS = {"visitor", "attributes", "triggers", "sums", "reading"}
_SELECTOR_PLACEMENTS = ("inline", "replace")
_WINDOW = "expected a window: session, total or a number of days such as 7d"


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    clauses: tuple[
        tuple[str, Predicate], ...
    ]  # (the clause's key, its test): the first to fail explains a miss
    ranges: tuple[tuple[float, float], ...]
    variants: tuple[Variant, ...]
    html: tuple[str | None, ...]  # each variant's widget, rendered at load; None for a control
    slot: str  # rules competing for the same slot: only the highest priority shows
    needs_state: bool  # reads the visitor's history or caps it, so cannot run without consent
    gap_ms: int
    # Each variant's personal widget (see sitecue.personal), rendered per visitor at decide
    # time instead of html (None there); None for a variant whose html is fixed.
    personal: tuple[PersonalWidget | None, ...] = ()

    @property
    def id(self) -> str:
        return self.rule.id


@dataclass(frozen=True)
class CompiledSite:
    config: SiteConfig
    rules: tuple[CompiledRule, ...]  # highest priority first
    zone: ZoneInfo
    pageview_triggers: tuple[tuple[str, Predicate], ...]  # (name, test of the page context)
    windows: dict[str, frozenset[str]]  # trigger name -> the windows some rule reads
    watched: tuple[TriggerSpec, ...]  # what the tag must report, because some rule counts it
    goals: tuple[str, ...]
    hidden: tuple[str, ...]  # the selectors replace placements take over (anti-flicker)
    trigger_days: dict[str, int]  # trigger -> the longest day window read (0: none)
    rule_days: dict[str, int]  # rule -> the day window its impression cap reads (0: none)
    origins: frozenset[str] = field(default_factory=frozenset)
    warnings: tuple[Problem, ...] = ()  # valid but risky (a $regex that can backtrack long)
    # Form answers some rule reads (attributes.<field>): only these are kept in the cookie.
    answers: dict[str, FormField] = field(default_factory=dict)
    # Reading time some rule reads: metric (minutes, average_seconds) -> its windows; empty
    # when none does (then the state keeps none). See reading.py.
    reading: dict[str, frozenset[str]] = field(default_factory=dict)
    reading_days: int = 0  # the longest day window of reading time read (0: none)
    # Triggers some rule sums (sums.<trigger>.<window>) -> the windows read; their counters
    # (in `windows` too, so kept and watched) carry the sums of the events' values.
    sums: dict[str, frozenset[str]] = field(default_factory=dict)
    data_keys: tuple[str, ...] = ()  # page-data keys some rule reads (page.data.<key>)
    webhooks: tuple[CompiledWebhook, ...] = ()  # told of what happens, through the outbox
    frequency: FrequencyCap | None = None  # the site's overlay budget, if it sets one
    budgeted: frozenset[str] = frozenset()  # the rules whose placement the budget covers
    stop_goals: frozenset[str] = frozenset()  # goals some rule stops after: the state keeps

    def form(self, rule_id: str, variant_id: str) -> Form | None:
        """The form the widget of this rule's variant carries, if any."""
        for rule in self.rules:
            if rule.id == rule_id:
                for variant in rule.variants:
                    if variant.id == variant_id and variant.widget is not None:
                        return self.config.widgets[variant.widget].form
        return None

    def strategies(self, rule_id: str, variant_id: str) -> tuple[str, ...]:
        """The strategies the widget of this rule's variant recommends by (none: it does
        not recommend)."""
        for rule in self.rules:
            if rule.id == rule_id:
                for variant in rule.variants:
                    if variant.id == variant_id and variant.widget is not None:
                        recommend = self.config.widgets[variant.widget].recommend
                        return tuple(recommend.strategies) if recommend else ()
        return ()

    @property
    def name(self) -> str:
        return self.config.site

    def trigger(self, name: str) -> Trigger | None:
        return self.config.triggers.get(name)


def _slot(rule: Rule) -> str:
    placement = rule.placement
    if placement.type in _SELECTOR_PLACEMENTS:
        return f"{placement.type}:{placement.selector}"
    return placement.type  # one modal, one slide-in and one bar at a time


def compile_site(
    config: SiteConfig,
    root: Path,
    extra_origins: frozenset[str] = frozenset(),
    keyring: Keyring | None = None,
) -> CompiledSite:
    """Check and compile ``config`` (whose templates and id lists live under ``root``).
    Without ``keyring`` (as ``sitecue check`` runs), id list files are checked but match
    nobody: their hashes are keyed by the server's secrets."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    audiences = compile_audiences(
        config.audiences, config.site, root, keyring, problems, warnings, config.attributes
    )
    try:
        zone = ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem(
                "$.timezone",
                f"expected an IANA time zone such as Europe/Stockholm, got {config.timezone!r}",
            )
        )
        zone = ZoneInfo("UTC")

    templates = Templates(root)
    rendered: set[str] = set()  # the widgets whose templates render
    # Form fields by name, for conditions on this browser's own answers (attributes.<name>).
    fields: dict[str, FormField] = {}
    broken: set[str] = set()  # widgets whose form is wrong: not rendered
    for name, widget in config.widgets.items():
        if widget.form is not None:
            wrong = form_problems(config, name, widget.form)
            problems.extend(wrong)
            if wrong:
                broken.add(name)
            for i, form_field in enumerate(widget.form.fields):
                if form_field.type in ("consent", "hidden"):
                    continue
                known = fields.get(form_field.name)
                if known is not None and known.type != form_field.type:
                    # One name, one meaning: a rule reading attributes.<name> reads either.
                    problems.append(
                        Problem(
                            f"$.widgets.{name}.form.fields[{i}].type",
                            f"expected {known.type}, as the other form's '{form_field.name}'",
                        )
                    )
                elif known is None or _bigger(form_field, known):
                    fields[form_field.name] = form_field  # the cookie's worst case takes it
    answers: dict[str, FormField] = {}
    personal: dict[str, PersonalWidget] = {}
    for name, widget in config.widgets.items():
        if name in broken:
            continue
        try:
            templates.compile(widget.template)
            before = len(problems)
            found = compile_personal(name, widget, config, templates, fields, answers, problems)
            if found is not None:
                personal[name] = found  # rendered per visitor, at decide time
                continue
            if len(problems) > before:
                continue
            html = templates.render(widget.template, _template_data(name, widget, "", ""))
        except TemplateProblem as err:
            problems.append(Problem(f"$.widgets.{name}.template", f"expected {err}"))
        else:
            rendered.add(name)
            if widget.form is not None and "data-sc-form" not in html:
                problems.append(
                    Problem(
                        f"$.widgets.{name}.template",
                        "expected a template that renders the widget's form ({% include"
                        ' "widgets/_form.html" %})',
                    )
                )

    pageview_triggers = []
    for name, trigger in config.triggers.items():
        at = f"$.triggers.{name}"
        takes = _TRIGGER_PARAMS.get(trigger.on, {})
        for param, meaning in _TRIGGER_MEANING.items():
            given = getattr(trigger, param) is not None
            if takes.get(param) and not given:
                problems.append(
                    Problem(f"{at}.{param}", f"expected {meaning} for a {trigger.on} trigger")
                )
            elif param not in takes and given:
                problems.append(
                    Problem(f"{at}.{param}", f"expected no {param} for a {trigger.on} trigger")
                )
        if trigger.on == "pageview":
            condition = {"page.path": trigger.path} if trigger.path is not None else {}
            test = _compile(condition, f"{at}.path", problems, config.site, warnings)
            pageview_triggers.append((name, test))
        if trigger.value is not None and trigger.on != "custom":
            problems.append(
                Problem(
                    f"{at}.value",
                    f"expected no value for a {trigger.on} trigger: only a custom event"
                    " carries one (sitecue('event', name, {value: 59.9}))",
                )
            )

    windows: dict[str, set[str]] = {}
    reading: dict[str, set[str]] = {}
    sums: dict[str, set[str]] = {}
    data_keys: set[str] = set()
    compiled: list[CompiledRule] = []
    seen_ids: set[str] = set()
    for i, rule in enumerate(config.rules):
        at = f"$.rules[{i}]"
        if rule.id in seen_ids:
            problems.append(
                Problem(f"{at}.id", f"expected a unique rule id, '{rule.id}' is used twice")
            )
        seen_ids.add(rule.id)
        compiled.append(
            _compile_rule(
                rule, at, config, templates, rendered, windows, problems, warnings, fields, answers,
                reading, audiences, personal,
            )
        )  # fmt: skip
        _value_paths(rule, at, config, windows, sums, data_keys, problems, audiences)

    webhooks, wrong = compile_webhooks(config, root)
    problems.extend(wrong)

    frequency = compile_frequency(config.frequency)
    if problems:
        # An audience's mistake is found once for every rule that uses it: report it once.
        raise ConfigError(list(dict.fromkeys(problems)))
    return CompiledSite(
        config=config,
        rules=tuple(sorted(compiled, key=lambda r: -r.rule.priority)),
        zone=zone,
        pageview_triggers=tuple(pageview_triggers),
        windows={name: frozenset(ws) for name, ws in windows.items()},
        watched=tuple(
            TriggerSpec(n, t.on, t.selector, t.percent, t.seconds)
            for n in windows
            if (t := config.triggers[n]).on != "pageview"  # pageviews are counted by the server
        )
        + catalog_triggers(config, windows),  # a catalog's cart and purchase, always
        goals=tuple(sorted({r.goal for r in config.rules if r.goal})),
        hidden=tuple(
            sorted(
                {
                    r.placement.selector
                    for r in config.rules
                    if r.placement.type == "replace" and r.placement.selector
                }
            )
        ),
        trigger_days={name: max(map(_days, ws)) for name, ws in windows.items()},
        rule_days={r.id: _days(r.limit.per) if r.limit.max else 0 for r in config.rules},
        origins=frozenset(config.origins) | extra_origins,
        warnings=tuple(warnings),
        answers=answers,
        reading={metric: frozenset(ws) for metric, ws in reading.items()},
        reading_days=max((_days(w) for ws in reading.values() for w in ws), default=0),
        sums={name: frozenset(ws) for name, ws in sums.items()},
        data_keys=tuple(sorted(data_keys)),
        webhooks=webhooks,
        frequency=frequency,
        budgeted=frozenset(
            r.id for r in config.rules if frequency and r.placement.type in frequency.applies_to
        ),
        stop_goals=frozenset(
            r.goal for r in config.rules if r.goal and "goal" in r.limit.stop_after
        ),
    )


def _value_paths(
    rule: Rule,
    at: str,
    config: SiteConfig,
    windows: dict[str, set[str]],
    sums: dict[str, set[str]],
    data_keys: set[str],
    problems: list[Problem],
    audiences: Audiences | None = None,
) -> None:
    """Check the rule's ``sums.<trigger>.<window>`` and ``page.data.<key>`` paths against
    the triggers that declare a value and the declared page data, and note what it reads:
    a summed trigger's counter is kept (its window counts among the trigger's), a page-data
    key read asks the tag for a re-decision when the page sets it."""
    for json_path, dotted in _paths_read(rule.when, f"{at}.when", audiences):
        parts = dotted.split(".")
        if parts[0] == "sums":
            valued = [n for n, t in config.triggers.items() if t.value is not None]
            if len(parts) != 3 or parts[1] not in valued:
                declared = ", ".join(valued) or 'none declares "value": "number"'
                problems.append(
                    Problem(
                        json_path,
                        'expected sums.<trigger declaring "value": "number">.<window>'
                        f" ({declared})",
                    )
                )
            elif not re.fullmatch(WINDOW_PATTERN, parts[2]):
                problems.append(Problem(json_path, _WINDOW))
            else:
                sums.setdefault(parts[1], set()).add(parts[2])
                windows.setdefault(parts[1], set()).add(parts[2])
        elif parts[0] == "page" and len(parts) >= 2 and parts[1] == "data":
            if len(parts) != 3 or parts[2] not in config.page_data:
                declared = ", ".join(config.page_data) or "none are declared"
                problems.append(
                    Problem(json_path, f"expected page.data.<declared page data> ({declared})")
                )
            else:
                data_keys.add(parts[2])


def _bigger(field: FormField, than: FormField) -> bool:
    """Can ``field``'s answer take more room than ``than``'s (same name, same type)?"""
    size = msgspec.msgpack.encode
    return len(size(largest_answer(field))) > len(size(largest_answer(than)))


def _template_data(name: str, widget: Widget, rule: str, variant: str) -> dict[str, Any]:
    """What a widget's template renders with: its data, the rule and variant, its name and
    its form (for ``widgets/_form.html``; None for a widget without one)."""
    form = msgspec.to_builtins(widget.form) if widget.form is not None else None
    return {**widget.data, "rule": rule, "variant": variant, "widget": name, "form": form}


def _days(window: Window) -> int:
    """How many day buckets a window reads; session and total read none."""
    return int(window[:-1]) if window.endswith("d") else 0


def _paths_read(condition: Any, path: str, audiences: Audiences | None) -> list[tuple[str, str]]:
    """The context paths a rule's condition reads: its own, and those of the audiences it
    names (at their paths in ``$.audiences``), so references are checked and the state
    keeps what they count."""
    own = [p for p in attribute_paths(condition, path) if audiences is None or p[1] != "audience"]
    return own if audiences is None else own + audiences.paths(condition, path)


def _compile(
    condition: Any,
    path: str,
    problems: list[Problem],
    site: str,
    warnings: list[Problem],
    audiences: Audiences | None = None,
) -> Predicate:
    try:
        if audiences is not None:
            warnings.extend(page_groups(condition, path, audiences.declared))
            return compile_condition(
                condition, audiences.groups, path=path, label=site, warnings=warnings,
                audiences=audiences.resolve,
            )  # fmt: skip
        return compile_condition(condition, path=path, label=site, warnings=warnings)
    except ConditionError as err:
        problems.extend(err.problems)
        return lambda _: False


def _compile_rule(
    rule: Rule,
    at: str,
    config: SiteConfig,
    templates: Templates,
    rendered: set[str],
    windows: dict[str, set[str]],
    problems: list[Problem],
    warnings: list[Problem],
    fields: dict[str, FormField],
    answers: dict[str, FormField],
    reading: dict[str, set[str]],
    audiences: Audiences | None = None,
    personal: dict[str, PersonalWidget] | None = None,
) -> CompiledRule:
    placement = rule.placement
    if placement.type in _SELECTOR_PLACEMENTS and not placement.selector:
        problems.append(
            Problem(f"{at}.placement.selector", f"expected a CSS selector for '{placement.type}'")
        )

    for json_path, dotted in _paths_read(rule.when, f"{at}.when", audiences):
        parts = dotted.split(".")
        if parts[0] not in CONTEXT_ROOTS:
            problems.append(
                Problem(
                    json_path, f"expected a path starting with one of {', '.join(CONTEXT_ROOTS)}"
                )
            )
        elif parts[0] == "attributes" and len(parts) >= 2 and parts[1] in fields:
            # This browser's own answer to a form field (never a declared attribute's name:
            # form_problems refuses that), kept in the cookie because this rule reads it.
            answers[parts[1]] = fields[parts[1]]
        elif parts[0] == "attributes" and (len(parts) < 2 or parts[1] not in config.attributes):
            declared = ", ".join([*config.attributes, *fields]) or "none are declared"
            what = "declared attribute or form field" if fields else "declared attribute"
            problems.append(Problem(json_path, f"expected attributes.<{what}> ({declared})"))
        elif parts[0] == "triggers":
            if len(parts) != 3 or parts[1] not in config.triggers:
                declared = ", ".join(config.triggers) or "none are declared"
                problems.append(
                    Problem(
                        json_path, f"expected triggers.<declared trigger>.<window> ({declared})"
                    )
                )
                continue
            if not re.fullmatch(WINDOW_PATTERN, parts[2]):
                problems.append(Problem(json_path, _WINDOW))
                continue
            windows.setdefault(parts[1], set()).add(parts[2])
        elif parts[0] == "reading":
            if len(parts) != 3 or parts[1] not in METRICS:
                problems.append(
                    Problem(
                        json_path,
                        "expected reading.minutes.<window> or reading.average_seconds.<window>",
                    )
                )
            elif not re.fullmatch(WINDOW_PATTERN, parts[2]):
                problems.append(Problem(json_path, _WINDOW))
            else:
                reading.setdefault(parts[1], set()).add(parts[2])
    clauses = tuple(
        (
            f"audience {value}" if key == "audience" and type(value) is str else key,  # the log's
            _compile({key: value}, f"{at}.when", problems, config.site, warnings, audiences),
        )
        for key, value in rule.when.items()
    )

    ids = [v.id for v in rule.variants]
    for j, variant in enumerate(rule.variants):
        if ids.index(variant.id) != j:
            problems.append(
                Problem(
                    f"{at}.variants[{j}].id",
                    f"expected a unique variant id, '{variant.id}' is used twice",
                )
            )
        if variant.widget is not None and variant.widget not in config.widgets:
            declared = ", ".join(config.widgets) or "none are declared"
            problems.append(
                Problem(
                    f"{at}.variants[{j}].widget",
                    f"expected a declared widget or null ({declared}), got '{variant.widget}'",
                )
            )
    total = sum(v.weight for v in rule.variants)
    if not math.isclose(total, 100, abs_tol=0.01):
        problems.append(
            Problem(
                f"{at}.variants", f"expected weights adding up to 100, they add up to {total:g}"
            )
        )
    ranges = bucket_ranges(
        len(rule.variants), rule.coverage, [v.weight / 100 for v in rule.variants]
    )
    if rule.namespace is not None and not rule.namespace.range[0] < rule.namespace.range[1]:
        problems.append(
            Problem(f"{at}.namespace.range", "expected [start, end] with start below end")
        )
    roots = {dotted.split(".")[0] for _, dotted in _paths_read(rule.when, "$", audiences)}
    limit = rule.limit
    if "goal" in limit.stop_after and not rule.goal:
        problems.append(
            Problem(
                f"{at}.limit.stop_after[{limit.stop_after.index('goal')}]",
                'expected a rule with a goal to stop after (set its "goal")',
            )
        )
    budget = config.frequency
    needs_state = bool(
        roots & _STATEFUL_ROOTS
        or limit.max
        or limit.gap
        or limit.stop_after
        or len(rule.variants) > 1
        # a site-wide budget is kept in the state: without it, no overlay it covers
        or (budget is not None and placement.type in budget.applies_to)
    )
    html = tuple(
        templates.render(
            config.widgets[v.widget].template,
            _template_data(v.widget, config.widgets[v.widget], rule.id, v.id),
        )
        if v.widget in rendered
        else None
        for v in rule.variants
    )
    return CompiledRule(
        rule,
        clauses,
        tuple(ranges),
        tuple(rule.variants),
        html,
        _slot(rule),
        needs_state,
        _ms(limit.gap),
        tuple(
            found.with_data(_template_data(v.widget, config.widgets[v.widget], rule.id, v.id))
            if v.widget is not None and (found := (personal or {}).get(v.widget)) is not None
            else None
            for v in rule.variants
        ),
    )


def _ms(duration: str | None) -> int:
    if duration is None:
        return 0
    return int(duration[:-1]) * {"m": 60_000, "h": 3_600_000, "d": 86_400_000}[duration[-1]]


def compile_file(
    path: Path,
    root: Path,
    extra_origins: frozenset[str] = frozenset(),
    keyring: Keyring | None = None,
) -> CompiledSite:
    """Read, check and compile one site file, raising one ConfigError with every mistake
    in it. Where the structure is wrong, the rest is compiled all the same (what is wrong
    standing in as its default), so mistakes of meaning show in the same run. What compiling
    says at, inside, above or beside (a sibling field of) a place whose structure is wrong
    is left out, since it is about the stand-in: a weight that is not a number makes the
    weights not add up to 100, a trigger of an unknown kind takes no selector."""
    config, problems = read_site(path)
    site: CompiledSite | None = None
    try:
        site = compile_site(config, root, extra_origins, keyring)
    except ConfigError as err:
        # An unknown field stands in for nothing: what compiling says beside it stands.
        wrong = [p.path for p in problems if not p.expected.startswith("unknown field")]
        problems += [p for p in err.problems if not any(_related(p.path, w) for w in wrong)]
    if problems or site is None:
        raise ConfigError(problems)
    return site


def _related(path: str, other: str) -> bool:
    """Is one JSON path the other, inside it, or a field of the same object (below the
    top level, whose settings do not depend on each other as a trigger's do on its kind)?"""
    path, other = _QUOTED_STEP.sub(r".\1", path), _QUOTED_STEP.sub(r".\1", other)
    inner, outer = (path, other) if len(path) >= len(other) else (other, path)
    if inner == outer or (inner.startswith(outer) and inner[len(outer)] in ".["):
        return True
    parent = _LAST_STEP.sub("", path)
    return parent != "$" and parent == _LAST_STEP.sub("", other)


# A member written ["subscription-faq"] here and .subscription-faq there: one step.
_QUOTED_STEP = re.compile(r'\["([^"\\.\[\]]*)"\]')
_LAST_STEP = re.compile(r'(\.[^.\[\]]+|\[(?:"(?:[^"\\]|\\.)*"|[^\]]*)\])$')


def load_sites(
    config_dir: Path, extra_origins: frozenset[str] = frozenset(), keyring: Keyring | None = None
) -> dict[str, CompiledSite]:
    """Load and compile every ``sites/*.json`` under ``config_dir``; raise one ConfigError
    with every problem of every file, each naming its file."""
    problems: list[Problem] = []
    sites: dict[str, CompiledSite] = {}
    files = sorted((config_dir / "sites").glob("*.json"))
    if not files:
        problems.append(Problem("$", "expected at least one site file", str(config_dir / "sites")))
    for path in files:
        try:
            site = compile_file(path, config_dir, extra_origins, keyring)
        except ConfigError as err:
            problems.extend(p._replace(file=str(path)) for p in err.problems)
            continue
        if site.name in sites:
            problems.append(
                Problem(
                    "$.site", f"expected a site name used once, '{site.name}' is taken", str(path)
                )
            )
        sites[site.name] = site
    if problems:
        raise ConfigError(problems)
    return sites
