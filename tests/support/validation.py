"""Waiting until a real worker has validated a version: it is `valid`, `invalid` or `error`."""

import requests

from hub.registry.choices import FINAL_STATUSES
from hub.registry.models import AdapterVersion
from tests.support.waiting import wait_until


def wait_until_validated(version=None, *, timeout=120.0, interval=0.1, **lookup) -> AdapterVersion:
    """Wait until `version` (an AdapterVersion or its pk), or the version matching `lookup` (e.g.
    `revision=...`, which may not exist yet), has finished validation; returns it as stored then. Fails the
    test after `timeout` seconds."""
    if version is not None:
        lookup = {"pk": getattr(version, "pk", version)}
    described = ", ".join(f"{key}={value!r}" for key, value in lookup.items())
    last = {}

    def validated():
        found = last["version"] = AdapterVersion.objects.filter(**lookup).first()
        return found if found is not None and found.status in FINAL_STATUSES else None

    def message():
        found = last.get("version")
        state = "does not exist" if found is None else f"is still {found.status}"
        return f"the version ({described}) {state}"

    return wait_until(validated, timeout, interval, message)


def wait_until_all_validated(versions, *, timeout=120.0, interval=0.1) -> dict[int, AdapterVersion]:
    """Wait until every one of `versions` (AdapterVersions or pks) has finished validation; returns them by
    pk. Fails the test after `timeout` seconds."""
    pks = {getattr(version, "pk", version) for version in versions}
    last = {}

    def validated():
        found = last["versions"] = AdapterVersion.objects.in_bulk(pks)
        done = len(found) == len(pks) and all(version.status in FINAL_STATUSES for version in found.values())
        return found if done else None

    def message():
        found = last.get("versions", {})
        waiting = sorted(pk for pk in pks if pk not in found or found[pk].status not in FINAL_STATUSES)
        return f"{len(waiting)} of {len(pks)} versions to be validated (still waiting: {waiting[:10]})"

    return wait_until(validated, timeout, interval, message)


def wait_until_status_final(status_url: str, *, timeout=120.0, interval=0.1) -> dict:
    """Poll a version's status URL (what an upload's 202 names) until validation finished; returns the
    status body. Fails the test after `timeout` seconds."""
    last = {}

    def final():
        body = last["body"] = requests.get(status_url, timeout=10).json()
        return body if body["status"] in FINAL_STATUSES else None

    return wait_until(
        final,
        timeout,
        interval,
        message=lambda: (
            f"{status_url} to say validation finished (last: {last.get('body', {}).get('status')})"
        ),
    )
