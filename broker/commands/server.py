"""``cafleet server``: the Django admin on waitress, a production WSGI server (cli.md §4.7).

Start-up, in order: resolve host and port (flag, then ``CAFLEET_BROKER_HOST`` /
``CAFLEET_BROKER_PORT``, then 127.0.0.1:8000), check the database (§4.1.2), warn about a
non-loopback address, bind, make sure an admin user exists (one named after the local OS
user, without a usable password, when there is none), then print the admin URL and a fresh
one-time login link (``broker.loginlink``) and serve until Ctrl-C (exit 0).

Static files (admin CSS/JS) are served by WhiteNoise inside the same WSGI application.
"""

from __future__ import annotations

import getpass
import ipaddress
import logging
import re
import signal
import socket
import sys

from broker.exceptions import CafleetError

THREADS = 4
_USERNAME_BAD = re.compile(r"[^\w.@+-]")


# ------------------------------------------------------------------------------ options
def check_listen(call) -> tuple[str, int]:
    """Host and port: the flag, else ``CAFLEET_BROKER_HOST`` / ``CAFLEET_BROKER_PORT``."""
    from broker import conf

    opts = call.options
    host = opts.get("host")
    if host is None:
        host = conf.broker_host()
    port = opts.get("port")  # the grammar already checked 1-65535 (exit 2 otherwise)
    if port is None:
        port = conf.broker_port()
    return host, port


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` binds to; raises CafleetError with the resolver's reason."""
    lookup = None if host == "*" else host.strip("[]")
    try:
        infos = socket.getaddrinfo(
            lookup,
            port,
            socket.AF_UNSPEC,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
            socket.AI_PASSIVE,
        )
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CafleetError(f"cannot listen on {host}:{port}: {reason}") from None
    return [info[4][0] for info in infos]


def is_loopback(host: str, addresses: list[str]) -> bool:
    """True when every address the host binds to is a loopback address."""
    if host == "*" or not addresses:
        return False
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
            return False
    return True


def non_loopback_warning(host: str, port: int) -> str:
    return (
        f"Warning: serving on a non-loopback address; anyone who can reach "
        f"{host}:{port} can try to log in."
    )


# ------------------------------------------------------------------------------ admin user
def local_username() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # no login name in the environment or passwd
        name = ""
    name = _USERNAME_BAD.sub("_", name)[:150].strip("_")
    return name or "admin"


def ensure_admin_user():
    """The user the login link logs in: the local OS user's admin account when it exists,
    else the oldest active superuser; creates one (no usable password) when there is none.
    """
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    wanted = local_username()
    admins = user_model.objects.filter(is_superuser=True, is_staff=True, is_active=True).order_by(
        "pk"
    )
    user = admins.filter(username=wanted).first() or admins.first()
    if user is not None:
        return user
    name, n = wanted, 1
    while user_model.objects.filter(username=name).exists():
        n += 1
        name = f"{wanted}-admin" if n == 2 else f"{wanted}-admin-{n - 1}"
    return user_model.objects.create_superuser(name, email="", password=None)


# ------------------------------------------------------------------------------ serving
def restrict_allowed_hosts(host: str) -> None:
    """On loopback, answer only loopback host names (a guard against DNS rebinding)."""
    from django.conf import settings

    names = {"localhost", "127.0.0.1", "[::1]", url_host(host.lower())}
    settings.ALLOWED_HOSTS = sorted(names)


def _configure_logging() -> None:
    """stderr gets tracebacks of failed requests (Django logs them only with DEBUG on), and
    not waitress's "Task queue depth" notes (a browser loading the admin's static files in
    parallel briefly queues requests; that is normal here)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("django.request").addHandler(handler)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def _stop(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the server like Ctrl-C does


def create_server(host: str, port: int):
    from django.core.handlers.wsgi import WSGIHandler
    from waitress import create_server as waitress_server

    try:
        return waitress_server(WSGIHandler(), host=host, port=port, threads=THREADS)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CafleetError(f"cannot listen on {host}:{port}: {reason}") from None
    except ValueError as exc:
        raise CafleetError(f"cannot listen on {host}:{port}: {exc}") from None


def _ensure_secret_key(path: str) -> None:
    """The admin's stable key, created only now that the database passed its checks."""
    from cafleet_project import secretkey

    try:
        secretkey.ensure(path)
    except secretkey.SecretKeyError as exc:
        raise CafleetError(str(exc)) from None


def server(call, out) -> None:
    host, port = call.checked
    signal.signal(signal.SIGTERM, _stop)
    try:
        serve(host, port, out)
    except KeyboardInterrupt:
        pass  # Ctrl-C (or SIGTERM) at any point stops the server: exit 0


def serve(host: str, port: int, out) -> None:
    from broker import loginlink
    from broker.database import ensure_ready, secret_key_anchor

    ensure_ready()
    _ensure_secret_key(secret_key_anchor())
    addresses = resolve(host, port)
    loopback = is_loopback(host, addresses)
    if not loopback:
        out.warn(non_loopback_warning(host, port))
    else:
        restrict_allowed_hosts(host)
    wsgi_server = create_server(host, port)
    try:
        from django.db import connection

        user = ensure_admin_user()
        connection.close()
        token = loginlink.issue(user.pk)
        base = f"http://{url_host(host)}:{port}"
        out.text(f"Serving the cafleet admin at {base}/admin/ (Ctrl-C to stop).")
        out.text(
            f"One-time login link (single use, valid 15 minutes): "
            f"{base}{loginlink.login_path(token)}"
        )
        out.stdout.flush()
        _configure_logging()
        wsgi_server.run()  # returns on Ctrl-C / SIGTERM after stopping its workers
    finally:
        try:
            wsgi_server.close()
        except OSError:
            pass
