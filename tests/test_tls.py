"""TLS: --certfile/--keyfile, https in the environ, the ssl_context hook, client certificates."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import requests


def _make_cert(directory: Path, name: str, *, ca: tuple[Path, Path] | None = None
               ) -> tuple[Path, Path]:
    """A self-signed (or CA-signed) certificate for 127.0.0.1, made with the openssl CLI."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subj = ["-subj", f"/CN={name}"]
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-keyout", str(key), "-out", str(cert), *subj,
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        return key, cert
    csr = directory / f"{name}.csr"
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(csr), *subj], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey",
                    str(ca[0]), "-CAcreateserial", "-days", "2", "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    try:
        subprocess.run(["openssl", "version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the openssl command is needed to make test certificates")
    directory = tmp_path_factory.mktemp("certs")
    server = _make_cert(directory, "server")
    ca = _make_cert(directory, "ca")
    client = _make_cert(directory, "client", ca=ca)
    return {"server": server, "ca": ca, "client": client}


def test_https_with_certfile_and_keyfile(serve, certs) -> None:  # type: ignore[no-untyped-def]
    key, cert = certs["server"]
    server = serve("--certfile", str(cert), "--keyfile", str(key), "wsgi_apps:echo")
    url = server.url.replace("http://", "https://")
    resp = requests.get(url + "/secure?x=1", verify=str(cert))
    assert resp.status_code == 200
    data = resp.json()
    assert data["scheme"] == "https" and data["path"] == "/secure"
    # Plain HTTP on a TLS port does not get a response; the worker carries on.
    with socket.create_connection((server.host, server.port), timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" not in plain.recv(1024)
    assert requests.get(url + "/again", verify=str(cert)).status_code == 200


def test_ssl_context_hook_builds_the_context(serve, certs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    key, cert = certs["server"]
    marker = tmp_path / "hook"
    conf = tmp_path / "conf.py"
    conf.write_text(
        "import ssl\n"
        "def ssl_context(config, default_ssl_context_factory):\n"
        "    context = default_ssl_context_factory()\n"
        "    context.minimum_version = ssl.TLSVersion.TLSv1_3\n"
        f"    open({str(marker)!r}, 'w').write(config.certfile)\n"
        "    return context\n"
    )
    server = serve("-c", str(conf), "--certfile", str(cert), "--keyfile", str(key),
                   "wsgi_apps:echo")
    url = server.url.replace("http://", "https://")
    assert requests.get(url, verify=str(cert)).status_code == 200
    assert marker.read_text() == str(cert)
    old = ssl.create_default_context(cafile=str(cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError), socket.create_connection(
        (server.host, server.port), timeout=5
    ) as raw, old.wrap_socket(raw, server_hostname="127.0.0.1"):
        pass


def test_client_certificates_required(serve, certs) -> None:  # type: ignore[no-untyped-def]
    key, cert = certs["server"]
    _, ca_cert = certs["ca"]
    server = serve("--certfile", str(cert), "--keyfile", str(key), "--cert-reqs", "2",
                   "--ca-certs", str(ca_cert), "wsgi_apps:echo")
    url = server.url.replace("http://", "https://")
    client_key, client_cert = certs["client"]
    resp = requests.get(url, verify=str(cert), cert=(str(client_cert), str(client_key)))
    assert json.loads(resp.text)["scheme"] == "https"
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, verify=str(cert), timeout=5)
