"""The ``adapterhub`` command: log in, push, pull, search, inspect, edit and delete adapters and configs on a hub;
list and clean the download cache.

Exit codes: 0 success; 1 not found or invalid (unknown adapter or config, ambiguous identifier, a pushed
version that failed validation, a checksum mismatch); 2 usage or connection problems (bad arguments,
hub unreachable, offline without a cached copy, missing or insufficient token).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from adapters_core import upload_metadata
from adapters_core.configuration import AdapterConfig, AdapterConfigError
from adapters_core.hub_client import (
    TOKENS_PAGE,
    AdapterDeprecatedWarning,
    AdapterValidationError,
    HubAmbiguousError,
    HubAuthError,
    HubClient,
    HubError,
    HubNotFoundError,
    HubUnreachableError,
    Resolution,
    describe_version,
    split_repo,
    store_token,
)
from adapters_core.hub_client.cache import cache_size, cached_adapters, clean_cache

EXIT_OK = 0
EXIT_NOT_FOUND_OR_INVALID = 1
EXIT_USAGE_OR_CONNECTION = 2


class UsageError(Exception):
    """The command line asks for something impossible; exit code 2."""


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, else ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text)


def status_message(args: argparse.Namespace, text: str) -> None:
    """A progress note on stderr (kept off stdout so ``--json`` output stays parseable)."""
    if not getattr(args, "json", False):
        print(text, file=sys.stderr)


def warning_message(text: str) -> None:
    """A warning on stderr, also with ``--json`` (stdout stays parseable)."""
    print(f"adapterhub: warning: {text}", file=sys.stderr)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


def client_for(args: argparse.Namespace) -> HubClient:
    # Progress bars go to stderr, on a terminal only (tqdm checks); --json asks for no decoration at all.
    return HubClient(
        url=getattr(args, "url", None),
        token=getattr(args, "token", None),
        progress=not getattr(args, "json", False),
    )


def cmd_login(args: argparse.Namespace) -> int:
    client = client_for(args)
    token = getattr(args, "token", None)
    if not token:
        if sys.stdin.isatty():
            token = getpass.getpass(f"API token for {client.url} (create one at {client.url}{TOKENS_PAGE}): ")
        else:
            token = sys.stdin.readline()
    token = token.strip()
    if not token:
        raise UsageError("No token given: pass --token TOKEN or type it when asked.")
    client.token = token
    me = client.whoami()
    path = store_token(client.url, token)
    emit(
        args,
        {
            "url": client.url,
            "username": me.get("username"),
            "scope": me.get("scope"),
            "credentials": str(path),
        },
        f"Logged in to {client.url} as {me.get('username')} (token scope: {me.get('scope')}). "
        f"The token is stored in {path}.",
    )
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    client = client_for(args)
    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{args.directory!r} is not a directory; give the directory save_adapter() wrote.")
    try:
        split_repo(args.repo)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    status_message(
        args,
        f"Uploading {directory} to {args.repo}"
        + (f" as version {args.version}" if args.version else " as its next version")
        + ("" if args.no_wait else "; then waiting for validation ..."),
    )
    try:
        metadata = {
            field.name: getattr(args, field.name)
            for field in upload_metadata.fields_for(upload_metadata.CLIENT)
        }
        record = client.push(
            directory,
            args.repo,
            **metadata,
            wait=not args.no_wait,
            wait_timeout=args.timeout,
            quiet=True,
        )
    except AdapterValidationError as exc:
        emit(args, exc.version_info, describe_version(exc.version_info))
        return EXIT_NOT_FOUND_OR_INVALID
    except FileNotFoundError as exc:
        # The directory has no adapter_config.json: the client's message says what to do.
        raise UsageError(str(exc)) from None
    text = describe_version(record)
    if args.no_wait and record.get("status_url"):
        text += f"\nValidation status: {record['status_url']}"
    emit(args, record, text)
    return EXIT_OK


def resolve_and_warn(client: HubClient, identifier: str, model: str, **options: Any) -> Resolution:
    """Resolve on the hub; a deprecated adapter or version is said on stderr in the command's words (instead of
    the library's Python warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdapterDeprecatedWarning)
        resolution = client.resolve(identifier, model, **options)
    notice = resolution.deprecation_notice()
    if notice is not None:
        warning_message(notice)
    return resolution


def deprecation_of(resolution: Resolution) -> dict[str, Any]:
    return {
        "deprecated_message": resolution.deprecated_message,
        "replaced_by": resolution.replaced_by,
        "version_deprecated_message": resolution.version_deprecated_message,
    }


def cmd_pull(args: argparse.Namespace) -> int:
    client = client_for(args)
    resolution = resolve_and_warn(
        client, args.identifier, args.model, config=args.config, version=args.version, strict=args.strict
    )
    directory = client.materialize(resolution)
    files = resolution.files_to_load()
    if args.output:
        output = Path(args.output)
        output.mkdir(parents=True, exist_ok=True)
        for remote in files:
            shutil.copyfile(directory / remote.name, output / remote.name)
        directory = output
    data = {
        "adapter": resolution.adapter,
        "version": resolution.version,
        "revision": resolution.revision,
        "path": str(directory),
        "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in files],
        **deprecation_of(resolution),
    }
    emit(args, data, f"{resolution.adapter}@{resolution.version} → {directory}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    client = client_for(args)
    results = client.search(
        args.query,
        task=args.task,
        model_name=args.model,
        architecture=args.architecture,
        type=args.type,
        limit=args.limit,
    )
    rows = [
        [
            item.get("adapter", "") + (" (deprecated)" if item.get("deprecated_message") else ""),
            item.get("identifier", ""),
            item.get("model_name", ""),
            item.get("architecture", ""),
            str(item.get("download_count", "")),
            item.get("latest_version") or "-",
        ]
        for item in results
    ]
    text = (
        table(rows, ["ADAPTER", "IDENTIFIER", "MODEL", "ARCHITECTURE", "DOWNLOADS", "VERSION"])
        if rows
        else "No adapters match."
    )
    emit(args, results, text)
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    client = client_for(args)
    resolution = None
    if args.model:
        resolution = resolve_and_warn(
            client, args.identifier, args.model, config=args.config, version=args.version
        )
        repo = resolution.adapter
    else:
        try:
            split_repo(args.identifier)
        except ValueError:
            raise UsageError(
                f"{args.identifier!r} is not 'namespace/name'; to look up an AdapterHub identifier, add "
                "--model MODEL_NAME (e.g. --model bert-base-uncased)."
            ) from None
        repo = args.identifier
    detail = client.adapter_info(repo)
    if resolution is not None:
        detail = {**detail, "resolved": resolution.raw}
    lines = [
        f"{detail.get('adapter', repo)}  ({detail.get('identifier', '')})",
        f"  model:        {detail.get('model_name')} ({detail.get('model_type')})",
        f"  architecture: {detail.get('architecture')} (config hash {detail.get('config_hash')})",
        f"  type:         {detail.get('type')}",
        f"  downloads:    {detail.get('download_count')}",
        f"  default:      {detail.get('default_version') or '-'}",
    ]
    if detail.get("description"):
        lines.append(f"  description:  {detail['description']}")
    if detail.get("deprecated_message"):
        instead = f" Use {detail['replaced_by']} instead." if detail.get("replaced_by") else ""
        lines.append(f"  deprecated:   {detail['deprecated_message']}{instead}")
    for version in detail.get("versions", []):
        deprecated = (
            f" (deprecated: {version['deprecated_message']})" if version.get("deprecated_message") else ""
        )
        lines.append(f"  version {version.get('version')}: {version.get('status')}{deprecated}")
    if resolution is not None:
        lines.append(f"  resolves to:  {resolution.adapter}@{resolution.version}")
    emit(args, detail, "\n".join(lines))
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace) -> int:
    client = client_for(args)
    if not client.token:
        raise UsageError(
            f"No token for {client.url}: run `adapterhub login` (tokens: {client.url}{TOKENS_PAGE}) or set "
            "ADAPTERHUB_TOKEN."
        )
    me = client.whoami()
    namespaces = ", ".join(f"{item.get('name')} ({item.get('role')})" for item in me.get("namespaces", []))
    emit(
        args,
        {"url": client.url, **me},
        f"{me.get('username')} on {client.url} (token scope: {me.get('scope')}); "
        f"namespaces: {namespaces or 'none'}",
    )
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    client = client_for(args)
    repo, _, version = args.repo.partition("@")
    try:
        split_repo(repo)
    except ValueError as exc:
        raise UsageError(f"{exc} Give namespace/name, or namespace/name@version for one version.") from None
    if args.repo.endswith("@"):
        raise UsageError(
            f"No version after '@' in {args.repo!r}: give namespace/name@version, e.g. {repo}@1."
        )
    what = f"version {version} of {repo}" if version else f"{repo} with all its versions"
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"Deleting {what} cannot be undone; pass --yes to confirm without a terminal.")
        answer = input(f"Delete {what} on {client.url}? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            emit(args, {"deleted": None}, "Nothing deleted.")
            return EXIT_OK
    if version:
        client.delete_version(repo, version)
    else:
        client.delete_adapter(repo)
    emit(args, {"deleted": args.repo, "url": client.url}, f"Deleted {what} on {client.url}.")
    return EXIT_OK


def cmd_edit(args: argparse.Namespace) -> int:
    client = client_for(args)
    repo, at, version = args.repo.partition("@")
    try:
        split_repo(repo)
    except ValueError as exc:
        raise UsageError(
            f"{exc} Give namespace/name, or namespace/name@version to deprecate one version."
        ) from None
    deprecated_message = "" if args.undeprecate else args.deprecate
    if at:
        return edit_version(args, client, repo, version, deprecated_message)
    readme = None
    if args.readme is not None:
        try:
            readme = Path(args.readme).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"Cannot read the README {args.readme}: {exc.strerror or exc}.") from None
    tags = [] if args.clear_tags else (args.tags or None)
    try:
        record = client.edit_adapter(
            repo,
            description=args.description,
            readme=readme,
            license=args.license,
            tags=tags,
            private=args.private,
            deprecated_message=deprecated_message,
            replaced_by=args.replaced_by,
        )
    except ValueError as exc:
        raise UsageError(
            f"{exc} E.g. adapterhub edit {repo} --description '...' --tag english --public."
        ) from None
    visibility = "private" if record.get("private") else "public"
    text = (
        f"Saved {repo} on {client.url} ({visibility}; license {record.get('license') or 'none'}; "
        f"tags: {', '.join(record.get('tags') or []) or 'none'})."
    )
    if record.get("deprecated_message"):
        text += f"\nDeprecated: {record['deprecated_message']}"
        if record.get("replaced_by"):
            text += f" Replaced by {record['replaced_by']}."
    emit(args, record, text)
    return EXIT_OK


def edit_version(
    args: argparse.Namespace, client: HubClient, repo: str, version: str, deprecated_message: str | None
) -> int:
    """`adapterhub edit namespace/name@version`: deprecate the version, or take its deprecation back."""
    if not version:
        raise UsageError(
            f"No version after '@' in {args.repo!r}: give namespace/name@version, e.g. {repo}@1."
        )
    adapter_options = {
        "--description": args.description,
        "--license": args.license,
        "--readme": args.readme,
        "--tag": args.tags,
        "--clear-tags": args.clear_tags or None,
        "--private/--public": args.private,
        "--replaced-by": args.replaced_by,
    }
    given = [option for option, value in adapter_options.items() if value is not None]
    if given:
        raise UsageError(
            f"{given[0]} belongs to the adapter, not to one version: run adapterhub edit {repo} {given[0]} ...; a "
            "version takes --deprecate MESSAGE or --undeprecate."
        )
    if deprecated_message is None:
        raise UsageError(
            f"Nothing to edit on version {version} of {repo}: give --deprecate MESSAGE (why, e.g. 'Trained on a "
            "leaked test set.') or --undeprecate."
        )
    record = client.edit_version(repo, version, deprecated_message=deprecated_message)
    if record.get("deprecated_message"):
        text = f"Version {version} of {repo} is deprecated: {record['deprecated_message']}"
    else:
        text = f"Version {version} of {repo} is no longer deprecated."
    emit(args, record, text)
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    cache_dir = client_for(args).cache_dir
    if args.action == "clean":
        freed = clean_cache(cache_dir)
        emit(
            args, {"cache": str(cache_dir), "freed": freed}, f"Removed {human_size(freed)} from {cache_dir}."
        )
        return EXIT_OK
    adapters = cached_adapters(cache_dir)
    total = cache_size(cache_dir)
    rows = [[item["adapter"], item["revision"], human_size(item["size"]), item["path"]] for item in adapters]
    text = table(rows, ["ADAPTER", "REVISION", "SIZE", "PATH"]) if rows else "No adapters cached."
    emit(
        args,
        {"cache": str(cache_dir), "size": total, "adapters": adapters},
        f"{text}\n{cache_dir}: {human_size(total)} on disk",
    )
    return EXIT_OK


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with a JSON value (``12``, ``true``, ``[0, 1]``); anything else is a string."""
    key, equals, raw = text.partition("=")
    if not equals or not key.strip():
        raise UsageError(f"Override {text!r} must be key=value, e.g. reduction_factor=12.")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def cmd_config(args: argparse.Namespace) -> int:
    overrides = dict(parse_override(item) for item in args.overrides)
    config = AdapterConfig.load(args.name, **overrides)
    # The resolved config is JSON whether or not --json was given: it is what users paste elsewhere.
    print(json.dumps(config.to_dict(), indent=2, sort_keys=True))
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # Common options are accepted before or after the command (`adapterhub --json search` and
    # `adapterhub search --json`); SUPPRESS keeps a subcommand from resetting what the main parser read.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="the hub (default: $ADAPTERHUB_URL)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (default: $ADAPTERHUB_TOKEN)")
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )

    parser = argparse.ArgumentParser(
        prog="adapterhub",
        description="Work with adapters on an AdapterHub server.",
        parents=[common],
        epilog="Exit codes: 0 ok, 1 not found or invalid, 2 usage or connection error.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", parents=[common], help="store an API token for the hub")
    login.set_defaults(handler=cmd_login)

    push = commands.add_parser("push", parents=[common], help="upload an adapter directory and validate it")
    push.add_argument("directory", help="directory written by save_adapter()")
    push.add_argument("--repo", required=True, help="namespace/name on the hub")
    for upload_field in upload_metadata.fields_for(upload_metadata.CLIENT):
        push.add_argument(
            upload_field.cli_option,
            dest=upload_field.name,
            choices=upload_field.choice_values or None,
            help=upload_field.help_text,
        )
    push.add_argument("--no-wait", action="store_true", help="return once uploaded, without waiting")
    # --version is one of the upload's metadata options above; without it the hub picks the next free label.
    push.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for validation")
    push.set_defaults(handler=cmd_push)

    pull = commands.add_parser("pull", parents=[common], help="download an adapter (verified, cached)")
    pull.add_argument("identifier", help="e.g. sentiment/sst-2@ukp or ukp/name")
    pull.add_argument("--model", required=True, help="base model name, e.g. bert-base-uncased")
    pull.add_argument("--config", help="config name or config string to match, e.g. pfeiffer")
    pull.add_argument("--version")
    pull.add_argument("--strict", action="store_true", help="only an exactly matching config")
    pull.add_argument("-o", "--output", help="copy the files into this directory")
    pull.set_defaults(handler=cmd_pull)

    search = commands.add_parser("search", parents=[common], help="list adapters matching a query")
    search.add_argument("query", nargs="?", help="words in name, description, task or subtask")
    search.add_argument("--task")
    search.add_argument("--model", help="base model name")
    search.add_argument("--architecture", help="e.g. pfeiffer")
    search.add_argument("--type", choices=upload_metadata.UPLOAD_FIELDS_BY_NAME["type"].choice_values)
    search.add_argument("--limit", type=int, default=50)
    search.set_defaults(handler=cmd_search)

    info = commands.add_parser("info", parents=[common], help="show an adapter and its versions")
    info.add_argument("identifier", help="namespace/name, or any identifier together with --model")
    info.add_argument("--model", help="base model name, to resolve an AdapterHub identifier")
    info.add_argument("--config")
    info.add_argument("--version")
    info.set_defaults(handler=cmd_info)

    whoami = commands.add_parser("whoami", parents=[common], help="who the token belongs to, and where")
    whoami.set_defaults(handler=cmd_whoami)

    delete = commands.add_parser(
        "delete", parents=[common], help="delete an adapter with all its versions, or one version"
    )
    delete.add_argument(
        "repo",
        help="namespace/name, or namespace/name@version for one version (needs an owner's write token)",
    )
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=cmd_delete)

    edit = commands.add_parser(
        "edit",
        parents=[common],
        help="change an adapter's description, README, license, tags, visibility or deprecation",
    )
    edit.add_argument(
        "repo",
        help="namespace/name, or namespace/name@version to deprecate one version (needs an owner's write token)",
    )
    edit.add_argument("--description", help="what the adapter does, in a few sentences")
    edit.add_argument("--license", help="an SPDX identifier, e.g. apache-2.0")
    edit.add_argument("--readme", metavar="FILE", help="a Markdown file: the adapter's model card")
    edit.add_argument(
        "--tag",
        dest="tags",
        action="append",
        metavar="TAG",
        help="a tag (repeat for several; replaces the tags)",
    )
    edit.add_argument("--clear-tags", action="store_true", help="remove every tag")
    visibility = edit.add_mutually_exclusive_group()
    visibility.add_argument(
        "--private", dest="private", action="store_true", default=None, help="members only"
    )
    visibility.add_argument("--public", dest="private", action="store_false", help="everyone")
    deprecation = edit.add_mutually_exclusive_group()
    deprecation.add_argument(
        "--deprecate",
        metavar="MESSAGE",
        help="deprecate it, saying why (it still resolves and downloads; clients are warned)",
    )
    deprecation.add_argument("--undeprecate", action="store_true", help="take the deprecation back")
    edit.add_argument(
        "--replaced-by",
        metavar="NAMESPACE/NAME",
        help="the adapter to use instead of this deprecated one ('' removes it)",
    )
    edit.set_defaults(handler=cmd_edit)

    cache = commands.add_parser("cache", parents=[common], help="list or clean the download cache")
    cache.add_argument(
        "action", choices=["list", "clean"], help="list: cached adapters and sizes; clean: delete everything"
    )
    cache.set_defaults(handler=cmd_cache)

    config = commands.add_parser("config", parents=[common], help="print a resolved config as JSON")
    config.add_argument("name", help="built-in name, config string, JSON file or name registered on the hub")
    config.add_argument("overrides", nargs="*", metavar="key=value", help="values to replace (JSON values)")
    config.set_defaults(handler=cmd_config)
    return parser


def exit_code_for(error: Exception) -> int:
    # Connection problems come first: a config looked up on an unreachable hub is both.
    if isinstance(error, HubUnreachableError | HubAuthError | UsageError):
        return EXIT_USAGE_OR_CONNECTION
    return EXIT_NOT_FOUND_OR_INVALID


def report_error(args: argparse.Namespace, error: Exception) -> None:
    if getattr(args, "json", False):
        body: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
        if isinstance(error, HubNotFoundError | AdapterConfigError) and getattr(error, "suggestions", None):
            body["suggestions"] = list(error.suggestions)
        if isinstance(error, HubAmbiguousError):
            body["candidates"] = error.candidates
        print(json.dumps({"error": body}, indent=2, sort_keys=True))
    else:
        print(f"adapterhub: error: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # `config` resolves hub names through AdapterConfig.load, which reads the hub from the environment.
    if getattr(args, "url", None):
        os.environ["ADAPTERHUB_URL"] = args.url
    if getattr(args, "token", None):
        os.environ["ADAPTERHUB_TOKEN"] = args.token
    try:
        return args.handler(args)
    except (HubError, AdapterConfigError, UsageError) as error:
        report_error(args, error)
        return exit_code_for(error)
    except BrokenPipeError:
        # The reader went away (`adapterhub search | head`); nothing left to say, and nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("adapterhub: interrupted; a partial download resumes on the next pull.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
