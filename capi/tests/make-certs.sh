#!/usr/bin/env bash
# Makes the TLS test certificates of the C tests (test_tls, the TLS echo_server) in DIR, with
# openssl; no private key is committed. Used by capi/tests/run.sh and run-windows.sh.
#
#   capi/tests/make-certs.sh DIR
#
# A CA; server (localhost, 127.0.0.1, ::1), other (other.test) and client certificates it
# signs; a self-signed "rogue" one; the server key encrypted (PKCS#8, AES-256-CBC, passphrase
# "test passphrase"); DH parameters. DIR is emptied first.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
d=$1
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
rm -rf "$d"
mkdir -p "$d"
openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
    -subj "/CN=usockets test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
leaf() { # name, subjectAltName, extendedKeyUsage
    openssl req -new "${ec[@]}" -keyout "$d/$1.key" -out "$d/$1.csr" -subj "/CN=$1"
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$2" "$3" > "$d/$1.ext"
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/$1.ext" -out "$d/$1.pem"
}
leaf server "DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth
leaf other "DNS:other.test" serverAuth
leaf client "DNS:client.test" clientAuth
openssl req -x509 "${ec[@]}" -keyout "$d/rogue.key" -out "$d/rogue.pem" -days 2 -subj "/CN=rogue" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "extendedKeyUsage=serverAuth,clientAuth"
openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$d/server.key" -out "$d/server-encrypted.key" \
    -passout "pass:test passphrase"
openssl dhparam -dsaparam -out "$d/dh.pem" 1024 2> /dev/null
