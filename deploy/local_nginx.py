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


# nginx's temporary folders, each set to a folder of the local nginx's own (the defaults lie under /var/lib/nginx).
TEMP_PATH_DIRECTIVES = {
    "client_body_temp_path": "body",
    "proxy_temp_path": "proxy",
    "fastcgi_temp_path": "fastcgi",
    "uwsgi_temp_path": "uwsgi",
    "scgi_temp_path": "scgi",
}


def module_lines() -> str:
    """The `load_module` lines of deploy/nginx-main.conf, for the main context of a local nginx: the modules
    deploy/nginx.conf needs (Debian's libnginx-mod-http-js installs the same path as the nginx image)."""
    return "".join(
        line + "\n" for line in MAIN_CONFIG.read_text().splitlines() if line.startswith("load_module ")
    )


def local_main_config(
    work_dir,
    http_body: str,
    *,
    worker_processes: str = "auto",
    worker_connections: int = 1024,
    error_log_level: str = "error",
    user: str | None = None,
) -> str:
    """The whole configuration of a local nginx run in the foreground (`nginx -p work_dir -c ...`) around
    `http_body`, the directives of its `http` block (servers, includes of `local_nginx_config`'s output): the
    modules deploy/nginx.conf needs, and the pid file, error log and temporary folders in `work_dir` (created
    here). `user` names the workers' user where nginx starts as root (ignored, with a notice, otherwise)."""
    lines = [module_lines().rstrip("\n")] if module_lines() else []
    if user:
        lines.append(f"user {user};")
    lines += [
        "daemon off;",
        f"pid {work_dir}/nginx.pid;",
        f"error_log {work_dir}/error.log {error_log_level};",
        f"worker_processes {worker_processes};",
        f"events {{ worker_connections {worker_connections}; }}",
        "http {",
    ]
    for directive, folder in TEMP_PATH_DIRECTIVES.items():
        Path(work_dir, folder).mkdir(parents=True, exist_ok=True)
        lines.append(f"    {directive} {work_dir}/{folder};")
    lines += [http_body.rstrip("\n"), "}"]
    return "\n".join(lines) + "\n"


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
    from the one deployed. Include it in the http block of `local_main_config`, which loads the modules it needs."""
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
