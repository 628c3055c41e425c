"""Client for an AdapterHub server's HTTP API: resolve adapters, download them into a verified cache, push
adapter directories, look up architectures (as dicts; :meth:`AdapterConfig.load` turns a name into a config).

Modules: ``client`` (:class:`HubClient` and module-level shortcuts), ``errors``, ``resolution`` (the hub's
answer to a resolution), ``cache`` (the download cache on disk), ``credentials`` (stored API tokens).
"""

from adapters_core.hub_client.cache import default_cache_dir
from adapters_core.hub_client.client import (
    DEFAULT_HUB_URL,
    HubClient,
    download,
    download_adapter,
    info,
    push,
    resolve,
    search,
    split_repo,
)
from adapters_core.hub_client.credentials import credentials_path, store_token, stored_token
from adapters_core.hub_client.errors import (
    TOKENS_PAGE,
    AdapterDeprecatedWarning,
    AdapterValidationError,
    HubAmbiguousError,
    HubAuthError,
    HubBadRequestError,
    HubChecksumError,
    HubConflictError,
    HubError,
    HubNotFoundError,
    HubOfflineError,
    HubUnreachableError,
    describe_version,
)
from adapters_core.hub_client.resolution import RemoteFile, Resolution

__all__ = [
    "TOKENS_PAGE",
    "DEFAULT_HUB_URL",
    "AdapterDeprecatedWarning",
    "AdapterValidationError",
    "HubAmbiguousError",
    "HubAuthError",
    "HubBadRequestError",
    "HubChecksumError",
    "HubClient",
    "HubConflictError",
    "HubError",
    "HubNotFoundError",
    "HubOfflineError",
    "HubUnreachableError",
    "RemoteFile",
    "Resolution",
    "credentials_path",
    "default_cache_dir",
    "describe_version",
    "download",
    "download_adapter",
    "info",
    "push",
    "resolve",
    "search",
    "split_repo",
    "store_token",
    "stored_token",
]
