"""Errors of the Hugging Face routes in the form the Hugging Face Hub answers them: the status, `X-Error-Code`
(`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`) where the clients know one, and `X-Error-Message`."""

from django.http import JsonResponse

from hub.http_errors import header_safe

# The message `huggingface_hub` reports as a credentials problem rather than as a missing repository.
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


class HubRouteError(Exception):
    """An error answered the way the Hugging Face Hub answers it: status, `X-Error-Code` (when the clients
    know one for it), message."""

    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit

    def response(self):
        response = JsonResponse({"error": self.message}, status=self.status)
        if self.code:
            response["X-Error-Code"] = self.code
        response["X-Error-Message"] = header_safe(self.message)
        if self.commit:
            # Lets clients remember that a file is absent from this revision.
            response["X-Repo-Commit"] = self.commit
        return response


class EmptyMain(Exception):
    """For a member of its namespace, `main` of the repository names no commit yet: it was created empty
    (`EmptyRepository`), or each of its commits failed validation. Each route answers as the Hugging Face Hub
    does for an empty repository (`HuggingFaceView.empty_main`): clients that look for a file before their first
    push (transformers' `push_to_hub` reads the README.md) are told it does not exist."""

    def __init__(self, full_name: str, private: bool):
        super().__init__(full_name)
        self.full_name, self.private = full_name, private


def repository_not_found(full_name: str) -> HubRouteError:
    """The error for a repository that does not exist for this caller (missing, private to others, or not
    served yet): 404 with `RepoNotFound`, the same in every case so nothing tells them apart."""
    return HubRouteError(
        404,
        "RepoNotFound",
        f"Repository {full_name} not found (or it is private, or it has no valid version yet).",
    )
