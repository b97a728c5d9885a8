"""TLS: clients (redis-py ``ssl=True``, ``redis-cli --tls``) and peers talk TLS with
certificates this test makes with ``openssl``; peers verify each other against the CA, so a
node whose certificate another CA signed cannot join."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from .conftest import wait_until

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the openssl command makes the test certificates")


#: EC keys: made in milliseconds where RSA takes seconds.
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *EC_KEY, "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=folder)
    return folder / f"{name}.pem", folder / f"{name}.key"


def make_cert(folder: Path, name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    (folder / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", *EC_KEY, "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
             "-out", f"{name}.pem", cwd=folder)
    return folder / f"{name}.pem", folder / f"{name}.key"


def tls_sets(cert: tuple[Path, Path], ca: Path) -> tuple[str, ...]:
    return (f'node.tls_cert_file="{cert[0]}"', f'node.tls_key_file="{cert[1]}"',
            f'node.tls_ca_file="{ca}"')


def test_clients_and_peers_over_tls(make_cluster, tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki", "cluster-ca")
    cert = make_cert(tmp_path / "pki", "node", ca)
    cluster = make_cluster(2, sets=tls_sets(cert, ca[0]), tls_ca=ca[0])
    one, two = cluster[0], cluster[1]
    client, other = one.client(), two.client()
    client.mset({f"tls:{i}": i for i in range(50)})
    assert other.mget([f"tls:{i}" for i in range(50)]) == [str(i).encode() for i in range(50)]
    assert other.dbsize() == 50
    assert int(one.cluster_info()["cluster_split_commands"]) > 0  # parts went over TLS
    for i in range(20):
        assert other.get(f"tls:{i}") == str(i).encode()
    assert int(two.cluster_info()["cluster_forwarded_commands"]) > 0
    cli = subprocess.run(["redis-cli", "--tls", "--cacert", str(ca[0]), "-p", str(two.port),
                          "GET", "tls:7"], capture_output=True, text=True, timeout=30)
    assert cli.stdout.strip() == "7", cli.stderr
    plain = redis.Redis(port=one.port, socket_timeout=3)
    with pytest.raises(redis.ConnectionError):
        plain.ping()  # a TLS port speaks TLS only
    plain.close()

    # A node whose certificate another CA signed: the members refuse it and it them.
    rogue_ca = make_ca(tmp_path / "rogue", "rogue-ca")
    rogue_cert = make_cert(tmp_path / "rogue", "rogue", rogue_ca)
    stranger = cluster[2]
    stranger.start(peers="", join=[one.address], extra=tls_sets(rogue_cert, rogue_ca[0]))
    rogue = redis.Redis(port=stranger.port, ssl=True, ssl_ca_certs=str(rogue_ca[0]))
    try:
        with pytest.raises(redis.ResponseError):
            rogue.execute_command("CLUSTER", "MEET", "127.0.0.1", one.port)
        assert rogue.execute_command("CLUSTER", "INFO").find(b"cluster_size:1") >= 0
    finally:
        rogue.close()
    wait_until(lambda: sorted(one.nodes()) == ["node-1", "node-2"], 5, "no rogue member")
    # A client certificate from another CA is refused too (peers present theirs).
    bad = redis.Redis(port=one.port, ssl=True, ssl_ca_certs=str(ca[0]),
                      ssl_certfile=str(rogue_cert[0]), ssl_keyfile=str(rogue_cert[1]))
    with pytest.raises(redis.ConnectionError):
        bad.ping()
    bad.close()
