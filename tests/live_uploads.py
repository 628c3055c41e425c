"""Uploading through the REST API of a live hub and waiting for a real worker to validate the version."""

import time

import requests

from hub.registry.choices import FINAL_STATUSES


def upload_and_validate(
    server_url: str, token: str, full_name: str, files: dict[str, bytes], **fields
) -> dict:
    """POST `files` (name -> content) as a new version of `full_name` ("namespace/name") with form `fields`
    (task, subtask, version, ...), then poll its status URL until validation finished. Returns the status
    body; fails the test unless the version ended valid."""
    response = requests.post(
        f"{server_url}/api/v1/adapters/{full_name}/versions/",
        headers={"Authorization": f"Bearer {token}"},
        files=[("files", (file_name, content)) for file_name, content in files.items()],
        data={"task": "sentiment", "version": "1", **fields},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = requests.get(status_url, timeout=10).json()
        if body["status"] in FINAL_STATUSES:
            assert body["status"] == "valid", body["report"].get("summary")
            return body
        time.sleep(0.1)
    raise AssertionError(f"{full_name} was not validated within 120 s")
