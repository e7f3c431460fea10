"""TLS termination in ``gateway serve`` (``--ssl-certfile``/``--ssl-keyfile``), with a self-signed certificate made
here: HTTPS answers, and the status-page cookie is ``Secure`` because the request came over TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.admin.status import COOKIE
from tests.conftest import GATEWAY_KEY
from tests.integration.serve import serve
from tests.integration.test_admin import ADMIN_KEY, admin_config


DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def test_gateway_serve_terminates_tls_and_sets_a_secure_cookie(emu, tmp_path):
    certfile, keyfile = _self_signed(tmp_path)
    cfg = admin_config(emu.url)
    cfg["state_dir"] = str(tmp_path / "state")
    trust = ssl.create_default_context(cafile=str(certfile))
    with serve(cfg, tmp_path, "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile), scheme="https",
               verify=trust) as (_, url):
        with httpx.Client(verify=trust, timeout=10) as c:
            r = c.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                       json={"model": "general", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
            r = c.post(url + "/status/login", data={"key": ADMIN_KEY})
            assert r.status_code == 303 and COOKIE in r.headers["set-cookie"]
            assert "secure" in r.headers["set-cookie"].lower().split("; ")
        # Plain HTTP on the TLS port gets no answer from the gateway.
        try:
            plain = httpx.get(url.replace("https://", "http://") + "/healthz", timeout=5).status_code
        except httpx.HTTPError:
            plain = None
        assert plain != 200


def test_certfile_without_keyfile_is_refused(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(DEMO),
                          "--ssl-certfile", str(tmp_path / "cert.pem")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--ssl-keyfile" in out.stderr
