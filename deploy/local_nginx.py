"""deploy/nginx.conf on this machine instead of in docker-compose: the same file with the compose names (the
web service, port 80, the media, static, cache and log folders, the registry's generation file and its script)
swapped for local ones. The nginx tests
(tests/hub/registry/test_nginx_downloads.py) and the API load benchmark (bench/api_load.py) run the checked-in
configuration through this, never a copy of it."""

from pathlib import Path

CONFIG = Path(__file__).with_name("nginx.conf")
MAIN_CONFIG = Path(__file__).with_name("nginx-main.conf")
GENERATION_SCRIPT = Path(__file__).with_name("registry_generation.js")
DOWNLOAD_LOG = "access_log /var/log/nginx/hub/downloads.log hub_downloads buffer=32k flush=1s"


def module_lines() -> str:
    """The `load_module` lines of deploy/nginx-main.conf, for the main context of a local nginx: the modules
    deploy/nginx.conf needs (Debian's libnginx-mod-http-js installs the same path as the nginx image)."""
    return "".join(
        line + "\n" for line in MAIN_CONFIG.read_text().splitlines() if line.startswith("load_module ")
    )


def local_nginx_config(
    *,
    upstream: str,
    listen: str,
    media_root,
    static_root,
    work_dir,
    registry_generation_file,
    log_at_once: bool = False,
) -> str:
    """The server block of deploy/nginx.conf for `upstream` (host:port of gunicorn), listening on `listen`,
    with the decisions' cache and `downloads.log` in `work_dir`, reading the generation token from
    `registry_generation_file` (give Django the same path as REGISTRY_GENERATION_FILE). `log_at_once` writes
    each download's log line when the download ends instead of once a second (tests read it right away).
    Raises ValueError when a compose name is not found exactly once: the configuration run would then differ
    from the one deployed. The main context must hold `module_lines()`."""
    log = f"access_log {work_dir}/downloads.log hub_downloads" + (
        "" if log_at_once else " buffer=32k flush=1s"
    )
    replacements = {
        "server web:8000;": f"server {upstream};",
        "listen 80;": f"listen {listen};",
        "alias /data/media/;": f"alias {media_root}/;",
        "alias /data/media/$hub_download_file;": f"alias {media_root}/$hub_download_file;",
        "alias /data/static/;": f"alias {static_root}/;",
        "proxy_cache_path /var/cache/nginx/hub-download-decisions": f"proxy_cache_path {work_dir}/decisions",
        DOWNLOAD_LOG: log,
        "from /etc/nginx/registry_generation.js;": f"from {GENERATION_SCRIPT};",
        "$hub_registry_generation_file /data/media/registry-generation;": (
            f"$hub_registry_generation_file {registry_generation_file};"
        ),
    }
    server_block = CONFIG.read_text()
    for compose_name, local_name in replacements.items():
        if server_block.count(compose_name) != 1:
            raise ValueError(f"deploy/nginx.conf no longer has exactly one {compose_name!r}")
        server_block = server_block.replace(compose_name, local_name)
    return server_block
