//! Private keys behind a passphrase (the C options' `key_file_name` with `passphrase`):
//! encrypted PKCS#8, the `ENCRYPTED PRIVATE KEY` PEM block that `openssl pkcs8 -topk8 -v2
//! aes-256-cbc` and OpenSSL 3's `genpkey -aes256` write.

use std::path::Path;

use pkcs8::{pkcs5, EncryptedPrivateKeyInfoRef, PrivateKeyInfoRef};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::TlsError;

const BEGIN: &[u8] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
const END: &[u8] = b"-----END ENCRYPTED PRIVATE KEY-----";

const CONVERT: &str = "convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`";

/// The private key of a PEM file, decrypted with `passphrase` when it is an encrypted PKCS#8
/// key (PBES2: PBKDF2 with HMAC-SHA1/SHA-2 or scrypt, then AES-CBC or AES-GCM). Unencrypted
/// keys (PKCS#1, SEC1, PKCS#8) load as with [`load_key`](crate::load_key), the passphrase
/// unused. A wrong or missing passphrase, an unsupported encryption, and OpenSSL's legacy
/// `Proc-Type: 4,ENCRYPTED` keys (which must be converted first) are errors naming the file.
pub fn load_key_with_passphrase(
    path: &Path,
    passphrase: Option<&str>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let file_error = |problem: String| TlsError::File {
        path: path.to_owned(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
    key_from_pem(&pem, passphrase).map_err(file_error)
}

/// The private key of PEM text, as [`load_key_with_passphrase`] reads it.
fn key_from_pem(pem: &[u8], passphrase: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    if is_legacy_encrypted(pem) {
        return Err(format!(
            "the private key is encrypted the legacy OpenSSL way (Proc-Type: 4,ENCRYPTED), \
             which is not supported: {CONVERT}"
        ));
    }
    match encrypted_block(pem) {
        Some(block) => decrypt(block, passphrase),
        None => {
            PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no usable private key: {e}"))
        }
    }
}

/// Whether a PEM block has the `Proc-Type: 4,ENCRYPTED` header of OpenSSL's traditional
/// encryption (with `DEK-Info`).
fn is_legacy_encrypted(pem: &[u8]) -> bool {
    pem.split(|&b| b == b'\n').any(|line| {
        let line = line.trim_ascii();
        line.starts_with(b"Proc-Type:") && line.ends_with(b"ENCRYPTED")
    })
}

/// The first `ENCRYPTED PRIVATE KEY` block of the file, from its BEGIN line to its END line.
fn encrypted_block(pem: &[u8]) -> Option<&[u8]> {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(pem, BEGIN)?;
    let end = start + find(&pem[start..], END)? + END.len();
    Some(&pem[start..end])
}

fn decrypt(block: &[u8], passphrase: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let (_, der) = pkcs8::der::pem::decode_vec(block)
        .map_err(|e| format!("malformed ENCRYPTED PRIVATE KEY: {e}"))?;
    // Schemes the decoder does not know (PBES1, PBES2 with 3DES) fail here, as a parse error.
    let info = EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).map_err(|e| {
        format!(
            "malformed ENCRYPTED PRIVATE KEY, or one not encrypted with PBES2 and AES ({e}): \
             {CONVERT}"
        )
    })?;
    let passphrase =
        passphrase.ok_or("the private key is encrypted and no passphrase was given")?;
    let plain = info.decrypt(passphrase).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(
            pkcs5::Error::UnsupportedAlgorithm { .. } | pkcs5::Error::NoPbes1CryptSupport,
        ) => format!("the private key's encryption is not supported ({e}): {CONVERT}"),
        pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid { .. }) => {
            format!("the private key's encryption parameters are invalid: {e}")
        }
        // A wrong key leaves bad padding or, rarely, garbage that is not DER.
        _ => "cannot decrypt the private key: wrong passphrase".to_owned(),
    })?;
    PrivateKeyInfoRef::try_from(plain.as_bytes())
        .map_err(|_| "cannot decrypt the private key: wrong passphrase".to_owned())?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

#[cfg(test)]
mod tests;
