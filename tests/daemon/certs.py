"""Test PKI made with the openssl CLI in a temporary directory.

make_certs(directory) writes:
    ca.pem / ca.key                 the trusted test CA
    server.pem / server.key         CN=localhost, subjectAltName IP:127.0.0.1, DNS:localhost,
                                    signed by ca
    other-ca.pem / other-ca.key     a second CA that signed nothing the server uses (untrusted)
and returns a dict of those paths.
"""
import os
import subprocess

OPENSSL = "openssl"
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _run(args, cwd):
    result = subprocess.run([OPENSSL] + args, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=30)
    if result.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args), result.stdout.decode()))


def _make_ca(directory, name, cn):
    _run(["req", "-x509"] + EC + ["-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
          "-subj", "/CN=" + cn,
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          "-addext", "subjectKeyIdentifier=hash"], directory)


def make_certs(directory):
    _make_ca(directory, "ca", "wsgate test CA")
    _make_ca(directory, "other-ca", "wsgate untrusted CA")
    _run(["req", "-new"] + EC + ["-keyout", "server.key", "-out", "server.csr",
          "-subj", "/CN=localhost"], directory)
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "authorityKeyIdentifier=keyid\n"
                "subjectKeyIdentifier=hash\n")
    _run(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext"],
         directory)
    paths = {name: os.path.join(directory, name)
             for name in ("ca.pem", "ca.key", "server.pem", "server.key", "other-ca.pem",
                          "other-ca.key")}
    return paths
