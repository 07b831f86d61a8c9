use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use pkcs8::pkcs5::pbes2::{EncryptionScheme, Parameters, Pbkdf2Params, Pbkdf2Prf, Salt};
use pkcs8::LineEnding;

use super::*;

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "usockets-tls-key-{}-{}.pem",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("temporary file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A new key, as PKCS#8 DER, and as PEM.
fn new_key() -> (Vec<u8>, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    (key.serialize_der(), key.serialize_pem())
}

/// `der` (PKCS#8) encrypted under `passphrase` as `params` say, as PEM.
fn encrypted_pem(der: &[u8], params: Parameters, passphrase: &str) -> String {
    let info = PrivateKeyInfoRef::try_from(der).expect("PKCS#8");
    let doc = info
        .encrypt_with_params(params, passphrase)
        .expect("encrypt");
    let pem = doc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF);
    pem.expect("PEM").to_string()
}

/// What `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes (OpenSSL 1.1 and later): PBKDF2 with
/// HMAC-SHA256, AES-256-CBC; a fixed salt and IV.
fn pbkdf2_sha256_aes256() -> Parameters {
    Parameters::generate_pbkdf2_sha256_aes256cbc(2048, &[7; 16], [9; 16]).expect("parameters")
}

/// The problem of a `TlsError::File` about `file`.
fn problem(result: Result<PrivateKeyDer<'static>, TlsError>, file: &TempFile) -> String {
    match result {
        Err(TlsError::File { path, problem }) => {
            assert_eq!(path, file.0);
            problem
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a key was loaded"),
    }
}

#[test]
fn an_encrypted_key_decrypts_with_its_passphrase() {
    let (der, _) = new_key();
    let file = TempFile::new(encrypted_pem(&der, pbkdf2_sha256_aes256(), "s3cret").as_bytes());
    let key = load_key_with_passphrase(&file.0, Some("s3cret")).expect("decrypted");
    assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    assert_eq!(key.secret_der(), der);
    // The key is one rustls can sign with.
    let provider = rustls::crypto::ring::default_provider();
    provider
        .key_provider
        .load_private_key(key)
        .expect("usable key");
}

#[test]
fn scrypt_and_pbkdf2_with_sha1_decrypt_too() {
    let (der, _) = new_key();
    let scrypt = pkcs5::scrypt::Params::new(10, 8, 1).expect("scrypt parameters");
    let scrypt = Parameters::generate_scrypt_aes128cbc(scrypt, &[3; 16], [4; 16]).expect("scrypt");
    // OpenSSL 1.0's `pkcs8 -v2 aes-256-cbc`: PBKDF2 with HMAC-SHA1.
    let sha1 = Parameters {
        kdf: Pbkdf2Params {
            salt: Salt::new([5; 8]).expect("salt"),
            iteration_count: 2048,
            key_length: None,
            prf: Pbkdf2Prf::HmacWithSha1,
        }
        .into(),
        encryption: EncryptionScheme::Aes256Cbc { iv: [6; 16] },
    };
    for params in [scrypt, sha1] {
        let file = TempFile::new(encrypted_pem(&der, params, "pass phrase").as_bytes());
        let key = load_key_with_passphrase(&file.0, Some("pass phrase")).expect("decrypted");
        assert_eq!(key.secret_der(), der);
    }
}

#[test]
fn a_wrong_or_missing_passphrase_is_a_file_error() {
    let (der, _) = new_key();
    let file = TempFile::new(encrypted_pem(&der, pbkdf2_sha256_aes256(), "right").as_bytes());
    for wrong in ["wrong", "", "right "] {
        let message = problem(load_key_with_passphrase(&file.0, Some(wrong)), &file);
        assert!(message.contains("wrong passphrase"), "{message}");
    }
    let message = problem(load_key_with_passphrase(&file.0, None), &file);
    assert!(message.contains("no passphrase was given"), "{message}");
    let shown = load_key_with_passphrase(&file.0, None).expect_err("no passphrase");
    assert!(shown.to_string().starts_with(&file.0.display().to_string()));
}

#[test]
fn a_legacy_encrypted_key_is_refused_with_how_to_convert_it() {
    // Not a key: filler under the headers of OpenSSL's traditional encryption.
    let body = "QUJD".repeat(16);
    let legacy = format!(
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
         DEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\n{body}\n\
         -----END EC PRIVATE KEY-----\n"
    );
    let file = TempFile::new(legacy.as_bytes());
    for passphrase in [Some("anything"), None] {
        let message = problem(load_key_with_passphrase(&file.0, passphrase), &file);
        assert!(
            message.contains("Proc-Type") && message.contains("openssl pkcs8 -topk8"),
            "{message}"
        );
    }
}

#[test]
fn unencrypted_keys_load_as_before_whatever_the_passphrase() {
    let (der, pem) = new_key();
    let file = TempFile::new(pem.as_bytes());
    for passphrase in [None, Some("unused")] {
        let key = load_key_with_passphrase(&file.0, passphrase).expect("key");
        assert_eq!(key.secret_der(), der);
    }
    let before = crate::load_key(&file.0).expect("key");
    assert_eq!(before.secret_der(), der);
}

#[test]
fn a_file_without_a_key_or_a_malformed_block_is_a_file_error() {
    let file = TempFile::new(b"no PEM here\n");
    let message = problem(load_key_with_passphrase(&file.0, Some("x")), &file);
    assert!(message.contains("no usable private key"), "{message}");
    let broken = TempFile::new(
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let message = problem(load_key_with_passphrase(&broken.0, Some("x")), &broken);
    assert!(
        message.contains("malformed ENCRYPTED PRIVATE KEY"),
        "{message}"
    );
    let missing = TempFile(std::env::temp_dir().join("usockets-tls-key-that-does-not-exist"));
    let message = problem(load_key_with_passphrase(&missing.0, None), &missing);
    assert!(message.contains("cannot read"), "{message}");
}
