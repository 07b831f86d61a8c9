//! OpenSSL-style cipher lists (what `SSL_CTX_set_cipher_list` takes, and what C users pass in
//! `us_socket_context_options_t.ssl_ciphers`), choosing the **TLS 1.2** suites of a rustls
//! [`CryptoProvider`]. TLS 1.3 suites are not touched: OpenSSL sets those apart too.
//!
//! # Grammar
//!
//! ```text
//! list     = element *( sep element )          sep = ":" | "," | " " | ";"
//! element  = [ "!" | "-" | "+" ] words | "@STRENGTH" | "@SECLEVEL=" digit(0-5)
//! words    = word *( "+" word )                (a suite matches if it matches every word)
//! word     = OpenSSL name | IANA name | keyword
//! ```
//!
//! Empty elements are skipped; names and keywords are case-sensitive, as in OpenSSL. The
//! elements are applied in order to the provider's TLS 1.2 suites, each either selected or
//! not, kept in a list whose final order (of the selected ones) is the preference order:
//!
//! - `words`: the matching suites not yet selected are selected, appended at the end.
//! - `!words`: the matching suites are removed for good: no later element brings them back.
//! - `-words`: the matching selected suites are unselected (a later element may select them
//!   again).
//! - `+words`: the matching selected suites move to the end.
//! - `@STRENGTH`: the selected suites are sorted by cipher key length, longest first (stable).
//! - `@SECLEVEL=n`: accepted and ignored (rustls has no security levels).
//!
//! Names: OpenSSL's (`ECDHE-RSA-AES128-GCM-SHA256`, `ECDHE-ECDSA-CHACHA20-POLY1305`) or
//! IANA's (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`). Keywords:
//!
//! | keyword | matches |
//! | --- | --- |
//! | `ALL`, `HIGH`, `TLSv1.2` | every suite (rustls' TLS 1.2 suites are all AEAD, "high") |
//! | `DEFAULT` | every suite; only as the first element, as in OpenSSL (elsewhere ignored) |
//! | `ECDHE`, `EECDH`, `kECDHE`, `kEECDH` | ECDHE key exchange |
//! | `DHE`, `EDH`, `kDHE`, `kEDH` | finite-field DHE key exchange (none in ring's provider) |
//! | `aRSA` | RSA certificates |
//! | `aECDSA`, `ECDSA` | ECDSA certificates |
//! | `AES`, `AESGCM` | AES-GCM |
//! | `AES128`, `AES256` | AES-128-GCM, AES-256-GCM |
//! | `CHACHA20` | ChaCha20-Poly1305 |
//!
//! These keywords are valid but match only suites rustls does not implement, so nothing:
//! `MEDIUM`, `LOW`, `EXPORT`, `aNULL`, `eNULL`, `NULL`, `MD5`, `SHA1`, `SHA`, `SHA256`,
//! `SHA384` (in OpenSSL these two name a MAC, which AEAD suites have none of), `RC4`, `DES`,
//! `3DES`, `RSA`, `kRSA` (RSA key exchange), `PSK`, `kPSK`, `aPSK`, `DSS`, `aDSS`, `SSLv3`,
//! `TLSv1`, `TLSv1.0`, `CAMELLIA`, `ARIA`, `SEED`, `IDEA`, `AESCCM`.
//!
//! A word that is neither a keyword nor the name of one of the provider's suites matches
//! nothing (OpenSSL ignores unknown names too); a suite of the provider this module does not
//! know the traits of (a custom provider's) is matched by its IANA name only. What is an
//! error: an empty word (`!`, `ECDHE+`), an unknown `@` command, and a list that selects no
//! TLS 1.2 suite at all (the empty list, `eNULL`, `RC4`, a misspelt name alone).
//!
//! Differences from OpenSSL: OpenSSL starts from its own order of suites, this from the
//! provider's (ring's: ECDSA before RSA, AES-256-GCM, AES-128-GCM, then ChaCha20); IANA names
//! are accepted. As in OpenSSL, the list's order is what a client offers; a rustls server
//! follows it over the client's only with `ServerConfig::ignore_client_order` (OpenSSL's
//! `SSL_OP_CIPHER_SERVER_PREFERENCE`).

use std::cmp::Reverse;

use rustls::crypto::CryptoProvider;
use rustls::SupportedCipherSuite;

use crate::config::TlsError;

/// The TLS 1.2 suites of `provider` that the OpenSSL-style cipher list `spec` selects, in its
/// preference order (the grammar: [`ciphers`](crate::ciphers)). Errors when `spec` is
/// malformed or selects none: a context must not end up with no TLS 1.2 suite unnoticed.
pub fn select_tls12_suites(
    provider: &CryptoProvider,
    spec: &str,
) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let error = |problem: String| TlsError::Ciphers {
        spec: spec.to_owned(),
        problem,
    };
    let all: Vec<Entry> = provider
        .cipher_suites
        .iter()
        .filter(|s| !is_tls13(s))
        .map(|s| Entry::new(*s))
        .collect();
    let mut list = all.clone();
    let elements = spec.split([':', ',', ' ', ';']).filter(|e| !e.is_empty());
    for (i, element) in elements.enumerate() {
        if let Some(command) = element.strip_prefix('@') {
            apply_command(&mut list, command).map_err(error)?;
            continue;
        }
        // The prefixes are ASCII: slicing past one byte stays on a character boundary.
        let (op, words) = match element.as_bytes().first() {
            Some(b'!') => (Op::Kill, &element[1..]),
            Some(b'-') => (Op::Unselect, &element[1..]),
            Some(b'+') => (Op::ToEnd, &element[1..]),
            _ => (Op::Select, element),
        };
        let words: Vec<&str> = words.split('+').collect();
        if words.iter().any(|w| w.is_empty()) {
            return Err(error(format!("{element:?} has an empty name")));
        }
        let default = i == 0 && op == Op::Select && words == ["DEFAULT"];
        apply(&mut list, op, |e| {
            (default && e.traits.is_some()) || words.iter().all(|w| e.matches(w))
        });
    }
    let selected: Vec<SupportedCipherSuite> = list
        .into_iter()
        .filter(|e| e.selected)
        .map(|e| e.suite)
        .collect();
    if selected.is_empty() {
        let names: Vec<String> = all.iter().map(Entry::name).collect();
        return Err(error(format!(
            "selects no TLS 1.2 cipher suite; this provider has: {}",
            names.join(":")
        )));
    }
    Ok(selected)
}

/// `provider` with its cipher suites narrowed by the cipher list `spec`: all its TLS 1.3
/// suites (as they were), then the TLS 1.2 suites [`select_tls12_suites`] picks, in that
/// order. What a context's `ssl_ciphers` option makes of the provider its configurations use.
pub fn provider_with_cipher_list(
    provider: &CryptoProvider,
    spec: &str,
) -> Result<CryptoProvider, TlsError> {
    let tls12 = select_tls12_suites(provider, spec)?;
    let mut narrowed = provider.clone();
    narrowed.cipher_suites = provider
        .cipher_suites
        .iter()
        .copied()
        .filter(is_tls13)
        .chain(tls12)
        .collect();
    Ok(narrowed)
}

fn is_tls13(suite: &SupportedCipherSuite) -> bool {
    matches!(suite, SupportedCipherSuite::Tls13(_))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Select,
    Kill,
    Unselect,
    ToEnd,
}

/// `op` on the suites of `list` that `hit` matches.
fn apply(list: &mut Vec<Entry>, op: Op, hit: impl Fn(&Entry) -> bool) {
    let (mut hits, rest): (Vec<Entry>, Vec<Entry>) = match op {
        Op::Select => std::mem::take(list)
            .into_iter()
            .partition(|e| !e.selected && hit(e)),
        Op::Kill => std::mem::take(list).into_iter().partition(|e| hit(e)),
        Op::Unselect | Op::ToEnd => std::mem::take(list)
            .into_iter()
            .partition(|e| e.selected && hit(e)),
    };
    match op {
        Op::Select | Op::ToEnd => {
            hits.iter_mut().for_each(|e| e.selected = true);
            *list = rest;
            list.append(&mut hits);
        }
        Op::Kill => *list = rest,
        // Unselected suites go to the front, as in OpenSSL: selected again by a later element,
        // they come back in the order they had.
        Op::Unselect => {
            hits.iter_mut().for_each(|e| e.selected = false);
            *list = hits;
            list.extend(rest);
        }
    }
}

/// An `@` command (without the `@`).
fn apply_command(list: &mut Vec<Entry>, command: &str) -> Result<(), String> {
    if command == "STRENGTH" {
        let (rest, mut selected): (Vec<Entry>, Vec<Entry>) =
            std::mem::take(list).into_iter().partition(|e| !e.selected);
        selected.sort_by_key(|e| Reverse(e.traits.map_or(0, |t| t.enc.bits())));
        *list = rest;
        list.append(&mut selected);
        return Ok(());
    }
    match command.strip_prefix("SECLEVEL=") {
        Some("0" | "1" | "2" | "3" | "4" | "5") => Ok(()),
        _ => Err(format!("unknown command \"@{command}\"")),
    }
}

/// One TLS 1.2 suite of the provider and whether the list so far selects it.
#[derive(Clone)]
struct Entry {
    suite: SupportedCipherSuite,
    iana: Option<&'static str>,
    /// The OpenSSL name, for suites whose traits are known.
    openssl: Option<String>,
    traits: Option<Traits>,
    selected: bool,
}

impl Entry {
    fn new(suite: SupportedCipherSuite) -> Entry {
        let iana = suite.suite().as_str();
        let known = iana.and_then(traits);
        Entry {
            suite,
            iana,
            openssl: known.as_ref().map(|(_, name)| name.clone()),
            traits: known.map(|(t, _)| t),
            selected: false,
        }
    }

    /// Whether this suite matches one word of an element.
    fn matches(&self, word: &str) -> bool {
        match keyword(word) {
            Some(test) => self.traits.is_some_and(test),
            None => self.iana == Some(word) || self.openssl.as_deref() == Some(word),
        }
    }

    fn name(&self) -> String {
        match (&self.openssl, self.iana) {
            (Some(name), _) => name.clone(),
            (None, Some(iana)) => iana.to_owned(),
            (None, None) => format!("{:?}", self.suite.suite()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kx {
    Ecdhe,
    Dhe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    Rsa,
    Ecdsa,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20,
}

impl Enc {
    fn bits(self) -> u32 {
        match self {
            Enc::Aes128Gcm => 128,
            Enc::Aes256Gcm | Enc::Chacha20 => 256,
        }
    }
}

/// What the keywords look at.
#[derive(Clone, Copy, Debug)]
struct Traits {
    kx: Kx,
    auth: Auth,
    enc: Enc,
}

/// The traits and OpenSSL name of a suite, from its IANA name, for the shapes rustls can
/// run in TLS 1.2 (AEAD, with ECDHE or DHE, signed by RSA or ECDSA); `None` for others.
fn traits(iana: &str) -> Option<(Traits, String)> {
    const KX_AUTH: [(&str, Kx, Auth, &str); 3] = [
        ("TLS_ECDHE_RSA_WITH_", Kx::Ecdhe, Auth::Rsa, "ECDHE-RSA-"),
        (
            "TLS_ECDHE_ECDSA_WITH_",
            Kx::Ecdhe,
            Auth::Ecdsa,
            "ECDHE-ECDSA-",
        ),
        ("TLS_DHE_RSA_WITH_", Kx::Dhe, Auth::Rsa, "DHE-RSA-"),
    ];
    const ENC: [(&str, Enc, &str); 3] = [
        ("AES_128_GCM_SHA256", Enc::Aes128Gcm, "AES128-GCM-SHA256"),
        ("AES_256_GCM_SHA384", Enc::Aes256Gcm, "AES256-GCM-SHA384"),
        (
            "CHACHA20_POLY1305_SHA256",
            Enc::Chacha20,
            "CHACHA20-POLY1305",
        ),
    ];
    let (rest, kx, auth, kx_name) = KX_AUTH
        .iter()
        .find_map(|&(p, kx, auth, n)| Some((iana.strip_prefix(p)?, kx, auth, n)))?;
    let &(_, enc, enc_name) = ENC.iter().find(|(e, _, _)| *e == rest)?;
    Some((Traits { kx, auth, enc }, format!("{kx_name}{enc_name}")))
}

/// The test of a keyword; `None` for a word that is not one.
fn keyword(word: &str) -> Option<fn(Traits) -> bool> {
    let test: fn(Traits) -> bool = match word {
        "ALL" | "HIGH" | "TLSv1.2" => |_| true,
        "ECDHE" | "EECDH" | "kECDHE" | "kEECDH" => |t| t.kx == Kx::Ecdhe,
        "DHE" | "EDH" | "kDHE" | "kEDH" => |t| t.kx == Kx::Dhe,
        "aRSA" => |t| t.auth == Auth::Rsa,
        "aECDSA" | "ECDSA" => |t| t.auth == Auth::Ecdsa,
        "AES" | "AESGCM" => |t| t.enc != Enc::Chacha20,
        "AES128" => |t| t.enc == Enc::Aes128Gcm,
        "AES256" => |t| t.enc == Enc::Aes256Gcm,
        "CHACHA20" => |t| t.enc == Enc::Chacha20,
        "MEDIUM" | "LOW" | "EXPORT" | "aNULL" | "eNULL" | "NULL" | "MD5" | "SHA1" | "SHA"
        | "SHA256" | "SHA384" | "RC4" | "DES" | "3DES" | "RSA" | "kRSA" | "PSK" | "kPSK"
        | "aPSK" | "DSS" | "aDSS" | "SSLv3" | "TLSv1" | "TLSv1.0" | "CAMELLIA" | "ARIA"
        | "SEED" | "IDEA" | "AESCCM" => |_| false,
        _ => return None,
    };
    Some(test)
}

#[cfg(test)]
mod tests;
