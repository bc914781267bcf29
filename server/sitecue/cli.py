"""``sitecue``: serve, run the demo, check configs, print the JSON Schema, and make keys,
tokens and contacts on the same settings as the server.

sitecue demo                      # the example news site and shop, on SQLite
sitecue check config/sites/*.json # every mistake as  file: $.json.path: what was expected
                                  # (and warnings, such as a state cookie over its cap)
sitecue serve --config config --workers 2
sitecue token mint --site news --contact customer-123      # the token on the last line
sitecue contacts import customers.csv --site shop          # .csv, .ndjson or .jsonl
sitecue catalog import products.csv --site shop            # every bad line, then batches
sitecue apikey list; sitecue apikey revoke 0123456789ab   # at once, on every worker
sitecue audiences import --site shop --audience staff staff.csv  # then reload the server
sitecue preview --site shop --rule free-express --url https://shop.example/cart  # signed link
sitecue config push -m "why"; sitecue config history; sitecue config rollback 3  # every node
sitecue recommend run --site shop  # count product events into recommendations now
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog_cli import add_catalog_commands, run_catalog
from .config import json_schema, load_site
from .config_cli import add_config_commands, run_config
from .errors import BadRequest, ConfigError, Problem, StoreUnavailable
from .rules import compile_file, compile_site
from .serve import add_arguments as add_serve_arguments
from .settings import Settings, SettingsError, database_url
from .state_size import state_size
from .state_size import warnings as cookie_warnings

if TYPE_CHECKING:
    from .bulk import Format
    from .store import Goals

__all__ = ["main"]

FORMATS = ("csv", "ndjson")  # a list's --format, when its extension does not say


def _check(files: Sequence[str]) -> int:
    config_dir = Path(os.environ.get("SITECUE_CONFIG_DIR", "config"))
    paths = [Path(f) for f in files] or sorted((config_dir / "sites").glob("*.json"))
    if not paths:
        print(f"{config_dir / 'sites'}: no site files to check", file=sys.stderr)
        return 1
    problems: list[Problem] = []
    warnings: list[Problem] = []
    summaries = []
    for path in paths:
        # Templates are named relative to the config directory, which holds sites/.
        root = path.resolve().parent.parent
        try:
            site = compile_file(path, root)
        except ConfigError as err:
            problems += [p._replace(file=str(path)) for p in err.problems]
            continue
        warnings += [w._replace(file=str(path)) for w in site.warnings]
        summaries.append(
            f"{path}: site '{site.name}' OK, {len(site.rules)} rule(s), "
            f"state cookie up to {state_size(site).worst} bytes"
        )
        # A warning does not fail the check: the site works, evicting at the cookie's cap.
        for warning in cookie_warnings(site):
            print(f"{path}: warning: {warning}", file=sys.stderr)
    for problem in [*warnings, *problems]:  # warnings alone do not fail the check
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} mistake(s) found", file=sys.stderr)
        return 1
    print("\n".join(summaries))
    return 0


def _demo(host: str, port: int) -> int:
    import uvicorn

    from .connections import PROTOCOL
    from .demo import build_demo_app
    from .serve import LOG_CONFIG

    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    origins = frozenset({f"http://{h}:{port}" for h in (host, "localhost", "127.0.0.1")})
    settings = Settings.load(demo=True, allow_origins=origins)
    app = build_demo_app(settings)
    print(f"sitecue demo (data in {settings.data_dir.resolve()})")
    print(f"  news site: http://{shown}:{port}/news/")
    print(f"  shop:      http://{shown}:{port}/shop/")
    print(f"  the tag:   http://{shown}:{port}/sc/cue.js (the shop's: /shop/sc/cue.js)")
    print(f"  dashboard: http://{shown}:{port}/sc/dashboard")
    sys.stdout.flush()
    # Held to the same limits as `sitecue serve` (the image serves the demo on 0.0.0.0).
    uvicorn.run(
        app, host=host, port=port, http=PROTOCOL, log_level="warning", log_config=LOG_CONFIG
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serve import ServeOptions, run

    if args.config:
        os.environ["SITECUE_CONFIG_DIR"] = args.config
    if args.db:
        os.environ["SITECUE_DB"] = args.db
    settings = Settings.load()  # fail here, naming the setting, rather than in every worker
    _check_store(settings.db)
    run("sitecue.cli:app_from_environment", ServeOptions.load(args))
    return 0


def _configured_goals() -> Goals | None:
    """The goals of the configured sites, for a store opened here: the migration that adds
    the rollups credits the goal events already logged by them. None when the config does
    not load (that migration then waits for a start with one that does)."""
    from .rules import load_sites
    from .runtime import goals_of

    try:
        return goals_of(load_sites(Path(os.environ.get("SITECUE_CONFIG_DIR", "config"))))
    except (ConfigError, OSError):
        return None


def _check_store(url: str) -> None:
    """Open the database once before any worker starts (creating or migrating it): one that
    cannot be opened stops ``serve`` here, with one line naming it, instead of every worker
    failing its start-up and the server staying up without listening."""
    import asyncio

    from .store import open_store

    async def open_and_close() -> None:
        store = await open_store(url, _configured_goals())
        await store.close()

    asyncio.run(open_and_close())


def _apikey_create(sites: list[str], label: str, db: str | None) -> int:
    """Create an admin key; its text is printed once, on the last line."""
    import asyncio

    from .api.keys import mint_key
    from .store import open_store

    config_dir = Path(os.environ.get("SITECUE_CONFIG_DIR", "config"))
    known = {p.stem for p in (config_dir / "sites").glob("*.json")}
    unknown = sorted(set(sites) - known) if known else []
    if unknown:
        print(
            f"--site: no site named {', '.join(unknown)} in {config_dir / 'sites'}", file=sys.stderr
        )
        return 2
    text, record = mint_key(sites, label)

    async def store_it() -> None:
        store = await open_store(database_url(db), _configured_goals())
        try:
            await store.add_api_key(record)
        finally:
            await store.close()

    asyncio.run(store_it())
    print(f"admin key for {', '.join(record.sites)} (shown once; only its hash is stored):")
    print(text)
    return 0


def _apikey_list(db: str | None) -> int:
    """Every admin key: id, when it was made and last used, whether it is revoked, its sites
    and label. Never the secret: only its hash is stored."""
    import asyncio
    import time

    from .store import ApiKey, open_store

    async def read() -> list[ApiKey]:
        store = await open_store(database_url(db), _configured_goals())
        try:
            return await store.api_keys()
        finally:
            await store.close()

    def when(seconds: int) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))

    keys = asyncio.run(read())
    if not keys:
        print("no admin keys yet; make one with: sitecue apikey create --site SITE")
        return 0
    print(f"{'id':<12}  {'created':<20}  {'last used':<20}  {'status':<28}  {'sites':<20}  label")
    for key in keys:
        used = "never" if key.last_used is None else when(key.last_used)
        status = "active" if key.revoked is None else f"revoked {when(key.revoked)}"
        sites = ",".join(key.sites)
        print(
            f"{key.id:<12}  {when(key.created):<20}  {used:<20}  {status:<28}  {sites:<20}"
            f"  {key.label}"
        )
    return 0


def _apikey_revoke(text: str, db: str | None) -> int:
    """Revoke a key (by id, or the whole key); it and its dashboard sessions stop working on
    every worker at once, since each request reads the key from the store."""
    import asyncio
    import time

    from .api.keys import key_id
    from .store import ApiKey, open_store

    found = key_id(text)
    if found is None:
        print("ID: expected a key id (12 hex digits, see apikey list) or sck_…", file=sys.stderr)
        return 2

    async def revoke(found: str) -> tuple[ApiKey | None, bool]:
        store = await open_store(database_url(db), _configured_goals())
        try:
            revoked = await store.revoke_api_key(found, int(time.time()))
            return await store.api_key(found), revoked
        finally:
            await store.close()

    key, revoked = asyncio.run(revoke(found))
    if key is None:
        print(f"ID: no admin key {found}", file=sys.stderr)
        return 1
    label = f" ({key.label})" if key.label else ""
    if revoked:
        print(f"revoked admin key {key.id}{label} for {', '.join(key.sites)}")
    else:
        print(f"admin key {key.id}{label} was already revoked")
    return 0


def _known_site(site: str) -> bool:
    config_dir = Path(os.environ.get("SITECUE_CONFIG_DIR", "config"))
    if (config_dir / "sites" / f"{site}.json").exists():
        return True
    print(f"--site: no site named {site} in {config_dir / 'sites'}", file=sys.stderr)
    return False


def _list_file(file: str, chosen: str | None) -> tuple[str, Format] | None:
    """The text of a CSV or NDJSON list and its format: ``--format``, else the file's
    extension. None (said on stderr, naming the file) when it is neither, or unreadable."""
    from .bulk import EXTENSIONS, format_of_path, text_of

    kind: Format | None = "csv" if chosen == "csv" else "ndjson" if chosen else None
    kind = kind or format_of_path(file)
    if kind is None:
        accepted = ", ".join(EXTENSIONS)
        print(
            f"{file}: expected a file ending in {accepted}, or --format csv|ndjson",
            file=sys.stderr,
        )
        return None
    try:
        data = Path(file).read_bytes()
    except OSError as err:
        print(f"{file}: cannot be read ({err.strerror})", file=sys.stderr)
        return None
    return text_of(data), kind


def _token_mint(
    site: str, contact: str | None, file: str | None, ttl: str, chosen: str | None = None
) -> int:
    """Email tokens on the same settings as the server: one on the last line, or for a
    campaign list (CSV or NDJSON of contact ids) ``contact,token`` rows as CSV."""
    import csv
    import time

    from .bulk import contact_ids
    from .tokens import TokenCodec, parse_ttl

    if not _known_site(site):
        return 2
    try:
        expires = int(time.time()) + parse_ttl(ttl)
    except ValueError as err:
        print(f"--{err}", file=sys.stderr)
        return 2
    codec = TokenCodec(Settings.load().secrets)
    if file is None:
        assert contact is not None
        print(f"token for {contact} on {site}, valid until {time.ctime(expires)}; add ?sc_t=…")
        print(codec.mint(site, contact, expires))
        return 0
    listed = _list_file(file, chosen)
    if listed is None:
        return 2
    ids = contact_ids(*listed)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(("contact", "token"))
    out.writerows((c, codec.mint(site, c, expires)) for c in ids)
    return 0


def _contacts_import(site: str, file: str, db: str | None, chosen: str | None = None) -> int:
    """Import a customer list (NDJSON or CSV) into the contacts of ``site``."""
    import asyncio
    import time

    from .bulk import contacts
    from .rules import load_sites
    from .store import Contact, open_store

    if not _known_site(site):
        return 2
    config_dir = Path(os.environ.get("SITECUE_CONFIG_DIR", "config"))
    declared = load_sites(config_dir)[site].config.attributes
    listed = _list_file(file, chosen)
    if listed is None:
        return 2
    people = contacts(*listed, declared)
    now = time.time_ns() // 1_000_000

    async def store_them() -> None:
        store = await open_store(database_url(db), _configured_goals())
        try:
            await store.put_contacts(
                [
                    Contact(
                        site, p.id, {k: v for k, v in p.attributes.items() if v is not None}, now
                    )
                    for p in people
                ]
            )
        finally:
            await store.close()

    asyncio.run(store_them())
    print(f"imported {len(people)} contact(s) into {site}")
    return 0


def _audiences_import(site: str, audience: str, file: str, chosen: str | None = None) -> int:
    """Hash a list of contact ids (CSV with an id column, or one id a line; NDJSON of ids)
    into the file the site config names for the audience: ``{"ids_file": path}``."""
    from .audiences import PURPOSE, id_file_path, write_id_file
    from .bulk import contact_ids, format_of_path, text_of
    from .keyring import Keyring

    if not _known_site(site):
        return 2
    config_dir = Path(os.environ.get("SITECUE_CONFIG_DIR", "config"))
    spec = load_site(config_dir / "sites" / f"{site}.json").audiences.get(audience)
    target = spec.get("ids_file") if spec is not None and len(spec) == 1 else None
    relative = id_file_path(target) if type(target) is str else None
    if type(target) is str and relative is None:
        # The config names where to write: never outside the config directory.
        print(f"--audience: its ids_file {target!r} is not inside {config_dir}", file=sys.stderr)
        return 2
    if relative is None:
        print(
            f"--audience: declare it in {config_dir / 'sites' / f'{site}.json'} first, as"
            f' "audiences": {{"{audience}": {{"ids_file": "audiences/{site}/{audience}.ids"}}}}',
            file=sys.stderr,
        )
        return 2
    kind: Format = "ndjson" if chosen == "ndjson" else "csv"  # CSV takes one id a line too
    if chosen is None and format_of_path(file) == "ndjson":
        kind = "ndjson"
    try:
        data = Path(file).read_bytes()
    except OSError as err:
        print(f"{file}: cannot be read ({err.strerror})", file=sys.stderr)
        return 2
    ids = contact_ids(text_of(data), kind)
    key = Keyring(Settings.load().secrets).mac_key(PURPOSE, site)
    path = config_dir / relative
    distinct, size = write_id_file(path, ids, key)
    print(f"{len(ids)} id(s), {distinct} distinct, hashed into {path} ({size} bytes)")
    print("reload the server to use them: POST /v1/reload, or send it SIGHUP")
    return 0


def _preview(site: str, rule: str, variant: str | None, ttl: str, url: str | None) -> int:
    """A signed preview link for one rule's variant, on the last line."""
    import time
    from urllib.parse import urlsplit

    from .keyring import Keyring
    from .preview import MAX_TTL_S, link, mint
    from .tokens import parse_ttl

    if not _known_site(site):
        return 2
    config_dir = Path(os.environ.get("SITECUE_CONFIG_DIR", "config"))
    config = compile_site(load_site(config_dir / "sites" / f"{site}.json"), config_dir).config
    found = next((r for r in config.rules if r.id == rule), None)
    if found is None:
        print(f"--rule: expected a rule of {site} ({', '.join(r.id for r in config.rules)})",
              file=sys.stderr)  # fmt: skip
        return 2
    ids = [v.id for v in found.variants]
    shown = next((v.id for v in found.variants if v.widget is not None), ids[0])
    variant = variant or shown
    if variant not in ids:
        print(f"--variant: expected a variant of {rule} ({', '.join(ids)})", file=sys.stderr)
        return 2
    try:
        lifetime = parse_ttl(ttl)
    except ValueError as err:
        print(f"--{err}", file=sys.stderr)
        return 2
    if lifetime > MAX_TTL_S:
        print(f"--ttl: expected at most {MAX_TTL_S // 86_400}d, got {ttl}", file=sys.stderr)
        return 2
    settings = Settings.load()
    origins = [*config.origins, *sorted(settings.allow_origins)]  # as the server allows them
    page = url or origins[0] + "/"
    parts = urlsplit(page)
    if f"{parts.scheme}://{parts.netloc}" not in origins:
        print(f"--url: expected a page of {site} ({', '.join(origins)})", file=sys.stderr)
        return 2
    expires = int(time.time()) + lifetime
    grant = mint(Keyring(settings.secrets), site, rule, variant, expires)
    print(f"preview of {rule} / {variant} on {site}, valid until {time.ctime(expires)}:")
    print(link(page, grant))
    return 0


def app_from_environment() -> object:
    """The app as configured by ``SITECUE_*`` variables (what each uvicorn worker runs)."""
    from .app import build_app

    return build_app(Settings.load())


_DESCRIPTION = """\
Serve the tag and the API, run the demo, check site configs, print their JSON Schema,
and make keys, tokens and contacts on the same settings as the server.
Every command takes --config DIR; those that open the database take --db URL."""
_CONFIG_HELP = "config directory (SITECUE_CONFIG_DIR, default ./config)"


def _version() -> str:
    """The installed package's version (what pip and the image know it as)."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    try:
        return version("sitecue")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitecue",
        description=_DESCRIPTION,
        # The examples at the top of this module, as they are (plain text, no markup).
        epilog="examples:\n  " + __doc__.split("\n\n", 1)[1].rstrip().replace("\n", "\n  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sitecue {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve the tag and the API",
        description="Serve the tag and the API. For internet-facing use, put nginx in front "
        "(see the README): it buffers slow clients, terminates TLS and passes "
        "X-Forwarded-Proto, which sitecue trusts from --forwarded-allow-ips only.",
    )
    serve.add_argument("--config", help="config directory (SITECUE_CONFIG_DIR, default ./config)")
    serve.add_argument("--db", help="database URL (SITECUE_DB, default SQLite in SITECUE_DATA_DIR)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    add_serve_arguments(serve)

    demo = commands.add_parser("demo", help="serve the example news site and shop")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--db", help="database URL (SITECUE_DB, default SQLite in SITECUE_DATA_DIR)")

    check = commands.add_parser("check", help="validate site configs")
    check.add_argument("files", nargs="*", help="site files (default: every file in config/sites)")

    commands.add_parser("schema", help="print the JSON Schema of a site file")

    apikey = commands.add_parser("apikey", help="admin API keys")
    apikey_commands = apikey.add_subparsers(dest="apikey_command", required=True)
    create = apikey_commands.add_parser("create", help="create a key for one or more sites")
    create.add_argument("--site", action="append", required=True, help="a site the key may act on")
    create.add_argument("--label", default="", help="who or what the key is for")
    create.add_argument("--db", help="database URL (default: as sitecue serve and demo)")
    listing = apikey_commands.add_parser("list", help="every key: id, sites, label, status")
    listing.add_argument("--db", help="database URL (default: as sitecue serve and demo)")
    revoke = apikey_commands.add_parser("revoke", help="revoke a key on every worker at once")
    revoke.add_argument("id", help="the key's id (as apikey list shows it), or the whole key")
    revoke.add_argument("--db", help="database URL (default: as sitecue serve and demo)")

    token = commands.add_parser("token", help="email tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    mint = token_commands.add_parser("mint", help="mint tokens for a contact or a list")
    mint.add_argument("--site", required=True)
    who = mint.add_mutually_exclusive_group(required=True)
    who.add_argument("--contact", help="one contact id")
    who.add_argument("--file", help="a campaign list: CSV or NDJSON of contact ids")
    mint.add_argument("--ttl", default="30d", help="how long the tokens work (30d, 12h)")
    mint.add_argument("--format", choices=FORMATS, help="default: the extension")

    contacts = commands.add_parser("contacts", help="contacts and their offsite attributes")
    contacts_commands = contacts.add_subparsers(dest="contacts_command", required=True)
    load = contacts_commands.add_parser("import", help="import a customer list")
    load.add_argument("file", help="NDJSON of {id, attributes}, or CSV id,<attribute>,…")
    load.add_argument("--site", required=True)
    load.add_argument("--db", help="database URL (default: as sitecue serve and demo)")
    load.add_argument("--format", choices=FORMATS, help="default: the extension")

    add_catalog_commands(commands)

    audiences = commands.add_parser("audiences", help="id lists of audiences")
    audiences_commands = audiences.add_subparsers(dest="audiences_command", required=True)
    hashed = audiences_commands.add_parser(
        "import", help="hash a list of contact ids into an audience's ids_file"
    )
    hashed.add_argument("file", help="CSV (first column, or one id a line) or NDJSON of ids")
    hashed.add_argument("--site", required=True)
    hashed.add_argument("--audience", required=True)
    hashed.add_argument("--format", choices=FORMATS, help="default: the extension, else CSV")

    preview = commands.add_parser(
        "preview", help="a signed link showing one rule on a page, counted nowhere"
    )
    preview.add_argument("--site", required=True)
    preview.add_argument("--rule", required=True)
    preview.add_argument("--variant", help="default: the rule's first variant with a widget")
    preview.add_argument("--ttl", default="1h", help="how long the link works (1h, 2d; 7d at most)")
    preview.add_argument("--url", help="the page to open (default: the site's first origin)")
    recommend = commands.add_parser("recommend", help="product recommendations")
    recommend_commands = recommend.add_subparsers(dest="recommend_command", required=True)
    run = recommend_commands.add_parser(
        "run", help="count the new product events into recommendations now"
    )
    run.add_argument("--site", help="one site (default: every site with a catalog)")
    run.add_argument("--db", help="database URL (default: as sitecue serve and demo)")
    add_config_commands(commands)
    _config_everywhere(parser)
    return parser


def _config_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--config DIR`` on every command that does not take it yet: each reads the config
    directory (the sites a key or a token may name, the goals the store credits)."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subcommands:
        for command in dict.fromkeys(action.choices.values()):  # aliases: once each
            _config_everywhere(command)
    if not subcommands and "--config" not in parser._option_string_actions:
        parser.add_argument("--config", metavar="DIR", help=_CONFIG_HELP)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. Output cut short by its reader (``sitecue schema |
    head``) ends the command quietly, as it does any Unix tool, not with a traceback."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a closed pipe can no longer be caught
    except BrokenPipeError:
        # What is still buffered for the closed pipe is dropped, so that Python's own flush
        # at exit finds nothing to write (and prints nothing about it).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return status


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "config", None):  # every command reads it from there, as workers do
        os.environ["SITECUE_CONFIG_DIR"] = args.config
    if getattr(args, "db", None):
        os.environ["SITECUE_DB"] = args.db
    try:
        if args.command == "check":
            return _check(args.files)
        if args.command == "schema":
            print(json.dumps(json_schema(), indent=2))
            return 0
        if args.command == "demo":
            return _demo(args.host, args.port)
        if args.command == "apikey" and args.apikey_command == "list":
            return _apikey_list(args.db)
        if args.command == "apikey" and args.apikey_command == "revoke":
            return _apikey_revoke(args.id, args.db)
        if args.command == "apikey":
            return _apikey_create(args.site, args.label, args.db)
        if args.command == "token":
            return _token_mint(args.site, args.contact, args.file, args.ttl, args.format)
        if args.command == "contacts":
            return _contacts_import(args.site, args.file, args.db, args.format)
        if args.command == "catalog":
            return run_catalog(args)
        if args.command == "audiences":
            return _audiences_import(args.site, args.audience, args.file, args.format)
        if args.command == "preview":
            return _preview(args.site, args.rule, args.variant, args.ttl, args.url)
        if args.command == "config":
            return run_config(args)
        if args.command == "recommend":
            from .recommend.command import run_command

            return run_command(args.site, args.db)
        return _serve(args)
    except SettingsError as err:
        print(f"sitecue: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    except StoreUnavailable as err:
        print(f"sitecue: {err}", file=sys.stderr)
        return 1
    except BadRequest as err:  # a list with a mistake: the line and what was expected
        print(f"{getattr(args, 'file', '')}: {err.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
