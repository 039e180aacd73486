"""Several `pitpass serve` processes on one PostgreSQL and Redis, behind a real nginx
running the configuration shipped in deploy/nginx/pitpass.conf (issue #11, Deliver 4).

The shipped file is used as it is; only what ties it to a production host is swapped:
the instances' ports, the listening ports, the certificate and the log directory. Each
swap must find its text, so a changed deploy file fails here instead of going untested.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.oauth_world import STAFF, World
from tests.support import (
    LiveServer,
    Mailbox,
    free_port,
    postgres_database,
    require_redis,
    server_env,
    smtp_env,
    smtp_server,
    unavailable,
    wait_until_ready,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SHIPPED_NGINX_CONF = DEPLOY / "nginx" / "pitpass.conf"
PRODUCTION_INSTANCES = ("server 127.0.0.1:8001 ", "server 127.0.0.1:8002 ")
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")
# A second loopback address for the test's clients: nginx sees it as $remote_addr, so
# Pitpass recording it (and not nginx's 127.0.0.1) proves the forwarded headers work.
CLIENT_ADDRESS = "127.0.0.2"
FORGED_ADDRESS = "203.0.113.7"  # what a client claims in its own X-Forwarded-For


def nginx_binary() -> str:
    found = next((path for path in NGINX_CANDIDATES if os.access(path, os.X_OK)), None)
    if found is None:
        found = shutil.which("nginx")
    if found is None:
        unavailable("Debian's nginx is not installed (apt-get install -y nginx)")
    assert found is not None
    return found


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A P-256 certificate for 127.0.0.1 (a CA of its own): (certificate, private key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def templated(text: str, swaps: Mapping[str, str]) -> str:
    for old, new in swaps.items():
        assert old in text, f"deploy/nginx/pitpass.conf no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def nginx_site(workdir: Path, upstream_ports: Sequence[int], https: int, http: int) -> str:
    """The shipped site file, tied to this test's ports, certificate and log directory."""
    certificate, _key = self_signed_certificate(workdir)
    assert len(upstream_ports) == len(PRODUCTION_INSTANCES)
    swaps = {
        instance: f"server 127.0.0.1:{port} "
        for instance, port in zip(PRODUCTION_INSTANCES, upstream_ports, strict=True)
    } | {
        "listen 80;": f"listen 127.0.0.1:{http};",
        "listen [::]:80;": "",  # the test machine may have no IPv6
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "/etc/letsencrypt/live/auth.example.com/": f"{certificate.parent}/",
        "/var/log/nginx/": f"{workdir}/",
    }
    return templated(SHIPPED_NGINX_CONF.read_text(), swaps)


def nginx_main_conf(workdir: Path, site: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf provides around sites-enabled/, for a
    foreground nginx whose every file lives in `workdir`."""
    temp = {name: workdir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    # Run as root (CI), the workers would become `nobody`, who cannot enter pytest's
    # private temporary directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {workdir}/nginx.pid;\n"
        f"error_log {workdir}/error.log info;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        "    default_type application/octet-stream;\n"
        f"    access_log {workdir}/access.log;\n"
        f"    client_body_temp_path {temp['body']};\n"
        f"    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n"
        f"    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"    include {site};\n"
        "}\n"
    )


@dataclass
class Proxy:
    base_url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    tls: ssl.SSLContext

    def client(self) -> httpx.Client:
        """A client of the proxy from CLIENT_ADDRESS, claiming FORGED_ADDRESS."""
        transport = httpx.HTTPTransport(verify=self.tls, local_address=CLIENT_ADDRESS)
        return httpx.Client(
            base_url=self.base_url,
            transport=transport,
            headers={"X-Forwarded-For": FORGED_ADDRESS},
            timeout=60,
            follow_redirects=False,
        )

    def log_text(self) -> str:
        return "\n".join(
            (self.workdir / name).read_text(errors="replace")
            for name in ("nginx.out", "error.log", "pitpass.error.log")
            if (self.workdir / name).exists()
        )


@contextmanager
def running_nginx(workdir: Path, upstream_ports: Sequence[int], https: int) -> Iterator[Proxy]:
    """Debian's nginx in the foreground on the shipped configuration, serving https on
    127.0.0.1:`https`; stopped afterwards."""
    binary = nginx_binary()
    workdir.mkdir(parents=True)
    http = free_port()
    site = workdir / "pitpass.conf"
    site.write_text(nginx_site(workdir, upstream_ports, https, http))
    main = workdir / "nginx.conf"
    main.write_text(nginx_main_conf(workdir, site))
    command = [binary, "-e", str(workdir / "error.log"), "-p", str(workdir), "-c", str(main)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"nginx -t refused the shipped configuration:\n{checked}"
    with (workdir / "nginx.out").open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    tls = ssl.create_default_context(cafile=str(workdir / "fullchain.pem"))
    proxy = Proxy(f"https://127.0.0.1:{https}", process, workdir, tls)
    try:
        _wait_for_proxy(proxy, "/readyz")
        yield proxy
    finally:
        process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_proxy(proxy: Proxy, path: str) -> None:
    """Until nginx answers `path` from an instance, or fail with nginx's log."""
    with proxy.client() as client:
        for _attempt in range(600):
            if proxy.process.poll() is not None:
                raise AssertionError(
                    f"nginx exited ({proxy.process.returncode}):\n" + proxy.log_text()
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get(path).status_code == 200:
                    return
            with contextlib.suppress(subprocess.TimeoutExpired):
                proxy.process.wait(timeout=0.05)
    raise AssertionError("nginx did not answer through to Pitpass:\n" + proxy.log_text())


def start_instance(
    workdir: Path, env: dict[str, str], name: str, *serve_options: str
) -> LiveServer:
    """`pitpass serve` as a real process on a free loopback port (not yet ready)."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "pitpass", "serve", "--port", str(port), *serve_options],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return LiveServer(f"http://127.0.0.1:{port}", process, log_path, env)


def port_of(server: LiveServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


@contextmanager
def stopped_at_exit(servers: Sequence[LiveServer]) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.close_provisioner()
            if server.process.poll() is None:
                server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@dataclass
class Cluster:
    """Two instances (`a`, `b`) on one database and Redis, nginx in front."""

    a: LiveServer
    b: LiveServer
    proxy: Proxy
    mailbox: Mailbox
    world: World  # provisions members and clients (in-process, on the shared database)

    def browser(self) -> httpx.Client:
        return self.proxy.client()


@contextmanager
def running_cluster(tmp_path: Path, **extra_env: str) -> Iterator[Cluster]:
    nginx_binary()  # before starting anything: skip (or fail in CI) at once
    redis_url = require_redis()
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database(migrated=True))
        mailbox, smtp_port = stack.enter_context(smtp_server())
        https_port = free_port()
        env = server_env(
            tmp_path,
            smtp_env(smtp_port)
            | {
                "PITPASS_DATABASE_URL": database_url,
                "PITPASS_REDIS_URL": redis_url,
                "PITPASS_REDIS_KEY_PREFIX": f"pitpass-test-{uuid.uuid4().hex[:12]}",
                "PITPASS_ISSUER": f"https://127.0.0.1:{https_port}/oauth2",
            }
            | extra_env,
        )
        servers = [start_instance(tmp_path, env, name) for name in ("a", "b")]
        stack.enter_context(stopped_at_exit(servers))
        for server in servers:
            wait_until_ready(server.base_url, server.process, server.log_path)
        proxy = stack.enter_context(
            running_nginx(tmp_path / "nginx", [port_of(s) for s in servers], https_port)
        )
        world = World(servers[0], mailbox)
        world.member(STAFF, staff=True)
        yield Cluster(servers[0], servers[1], proxy, mailbox, world)


# ----- requests an instance has started -------------------------------------------


def started_request(server: LiveServer, path: str, body: bytes) -> socket.socket:
    """A form POST whose headers and first half of body have been sent to `server`: once
    the instance has read them, a request it has started and is waiting on."""
    port = port_of(server)
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    connection.sendall(head.encode() + body[: len(body) // 2])
    return connection


def finished_request(connection: socket.socket, body: bytes) -> tuple[int, bytes]:
    """The rest of the body of a `started_request`; its status and payload, read until the
    instance closes the connection (as it does with every connection while it stops)."""
    with connection:
        connection.sendall(body[len(body) // 2 :])
        with connection.makefile("rb") as stream:
            response = stream.read()
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), response
    return int(head.split()[1]), payload


def wait_until_refusing(server: LiveServer, deadline_seconds: float = 60.0) -> None:
    """Until the instance refuses new connections: it has begun to shut down."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port_of(server)), timeout=5).close()
        except ConnectionRefusedError:
            return
        assert time.monotonic() < deadline, "the instance still accepts connections"
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=0.05)
