"""Uploading through the REST API of a live hub (gunicorn or the live test server)."""

import requests

from hub.registry.choices import VersionStatus
from tests.support.validation import wait_until_status_final


def post_upload(server_url: str, token: str, full_name: str, files: dict[str, bytes], **fields) -> dict:
    """POST `files` (name -> content) as a new version of `full_name` ("namespace/name") with form `fields`
    (task, subtask, version, ...; task "sentiment" and version "1" unless given). Returns the 202's body."""
    response = requests.post(
        f"{server_url}/api/v1/adapters/{full_name}/versions/",
        headers={"Authorization": f"Bearer {token}"},
        files=[("files", (file_name, content)) for file_name, content in files.items()],
        data={"task": "sentiment", "version": "1", **fields},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    return response.json()


def upload_and_validate(
    server_url: str, token: str, full_name: str, files: dict[str, bytes], **fields
) -> dict:
    """`post_upload`, then wait until a real worker has validated the version. Returns the status body;
    fails the test unless the version ended valid."""
    accepted = post_upload(server_url, token, full_name, files, **fields)
    body = wait_until_status_final(accepted["status_url"], timeout=120)
    assert body["status"] == VersionStatus.VALID, body["report"].get("summary")
    return body
