//! [`ServerNames`]: the server's certificate chosen by the name a client asks for (SNI).

use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::{Options, TlsError};

/// Most labels a server-name pattern may have.
pub const MAX_LABELS: usize = 10;

/// Called with a name no pattern matches, before the default certificate is used: it may
/// [`add`](ServerNames::add) the name, which then serves this very handshake.
pub type OnMissing = dyn Fn(&ServerNames, &str) + Send + Sync;

/// Server certificates by name pattern, for SNI: a pattern is a host name whose labels are
/// matched case-insensitively, where a label `*` matches exactly one label in any position
/// (`*.example.com`, `*.google.*`); at most [`MAX_LABELS`] labels. A name several patterns match
/// gets the one with the fewest wildcards (then the one added first). A client asking for no
/// name, or for one nothing matches, gets the default certificate if there is one (else the
/// handshake fails). Each pattern carries an opaque `userdata` (the C ABI's `void *`).
/// Patterns may be added and removed while the server runs.
pub struct ServerNames {
    entries: RwLock<Vec<Entry>>,
    default: Option<Arc<CertifiedKey>>,
    on_missing: RwLock<Option<Arc<OnMissing>>>,
}

struct Entry {
    /// Lowercase labels.
    labels: Vec<String>,
    key: Arc<CertifiedKey>,
    userdata: usize,
}

impl fmt::Debug for ServerNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns: Vec<String> = self
            .entries
            .read()
            .map(|e| e.iter().map(|x| x.labels.join(".")).collect())
            .unwrap_or_default();
        f.debug_struct("ServerNames")
            .field("patterns", &patterns)
            .field("default", &self.default.is_some())
            .finish()
    }
}

/// A certificate chain and its key, ready to serve (`CertifiedKey`), with the provider's key
/// loader; an error when the key does not fit the leaf certificate.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    Ok(Arc::new(CertifiedKey::from_der(chain, key, provider)?))
}

/// The lowercase labels of `name`, if it is a usable pattern.
fn labels(name: &str) -> Option<Vec<String>> {
    let labels: Vec<String> = name
        .trim_end_matches('.')
        .split('.')
        .map(str::to_ascii_lowercase)
        .collect();
    let valid = !labels.is_empty()
        && labels.len() <= MAX_LABELS
        && labels
            .iter()
            .all(|l| !l.is_empty() && (l == "*" || !l.contains('*')));
    valid.then_some(labels)
}

/// Whether `pattern` matches the lowercase labels of a name.
fn matches(pattern: &[String], name: &[String]) -> bool {
    pattern.len() == name.len() && pattern.iter().zip(name).all(|(p, n)| p == "*" || p == n)
}

impl ServerNames {
    /// No patterns; `default` serves clients that ask for no name or an unknown one.
    pub fn new(default: Option<Arc<CertifiedKey>>) -> ServerNames {
        ServerNames {
            entries: RwLock::new(Vec::new()),
            default,
            on_missing: RwLock::new(None),
        }
    }

    /// These names, calling `f` for a name no pattern matches (see [`OnMissing`]).
    #[must_use]
    pub fn with_on_missing(self, f: Box<OnMissing>) -> ServerNames {
        self.set_on_missing(Some(f));
        self
    }

    /// Calls `f` from now on for a name no pattern matches (see [`OnMissing`]); `None` stops
    /// calling.
    pub fn set_on_missing(&self, f: Option<Box<OnMissing>>) {
        let mut slot = self.on_missing.write().unwrap_or_else(|e| e.into_inner());
        *slot = f.map(Arc::from);
    }

    /// Serves `key` to clients asking for a name `pattern` matches, replacing the pattern's
    /// previous certificate. Fails for an invalid pattern (empty labels, `*` inside a label,
    /// more than [`MAX_LABELS`] labels).
    pub fn add(
        &self,
        pattern: &str,
        key: Arc<CertifiedKey>,
        userdata: usize,
    ) -> Result<(), TlsError> {
        let labels = labels(pattern).ok_or_else(|| {
            TlsError::Rustls(rustls::Error::General(format!(
                "invalid server name pattern {pattern:?}"
            )))
        })?;
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| e.labels != labels);
        entries.push(Entry {
            labels,
            key,
            userdata,
        });
        Ok(())
    }

    /// Stops serving `pattern`; returns whether it was there.
    pub fn remove(&self, pattern: &str) -> bool {
        let Some(labels) = labels(pattern) else {
            return false;
        };
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let before = entries.len();
        entries.retain(|e| e.labels != labels);
        entries.len() != before
    }

    /// The certificate and userdata of the best pattern matching `name`.
    fn find(&self, name: &str) -> Option<(Arc<CertifiedKey>, usize)> {
        let name = labels(name)?;
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .filter(|e| matches(&e.labels, &name))
            .min_by_key(|e| e.labels.iter().filter(|l| *l == "*").count())
            .map(|e| (Arc::clone(&e.key), e.userdata))
    }

    /// The userdata of the pattern that serves `name` (`us_socket_context_find_server_name_userdata`).
    pub fn find_userdata(&self, name: &str) -> Option<usize> {
        self.find(name).map(|(_, u)| u)
    }
}

impl ResolvesServerCert for ServerNames {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return self.default.clone();
        };
        if let Some((key, _)) = self.find(name) {
            return Some(key);
        }
        // Cloned out of the lock: `f` may add the name (or set another callback).
        let on_missing = self
            .on_missing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(f) = on_missing {
            f(self, name);
            if let Some((key, _)) = self.find(name) {
                return Some(key);
            }
        }
        self.default.clone()
    }
}

/// A server configuration choosing its certificate with `names`.
pub fn server_config_with_names(
    names: Arc<ServerNames>,
    options: &Options,
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = options
        .server_builder()?
        .with_no_client_auth()
        .with_cert_resolver(names);
    Ok(Arc::new(config))
}

thread_local! {
    /// What the last certificate resolution on this thread saw: `Some(server name, if any)`
    /// once one ran since [`forget`]. rustls resolves inside the session's processing, on the
    /// loop thread, so the layer reads it right after.
    static SEEN: Cell<Option<Option<String>>> = const { Cell::new(None) };
}

/// A resolver that notes the server name of each ClientHello, then asks the one it wraps.
#[derive(Debug)]
struct NotingServerName(Arc<dyn ResolvesServerCert>);

impl ResolvesServerCert for NotingServerName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        SEEN.set(Some(hello.server_name().map(str::to_owned)));
        self.0.resolve(hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.0.only_raw_public_keys()
    }
}

/// A copy of `config` whose certificate resolver notes the server name each client asks for
/// (read with [`seen`]): rustls' unbuffered server connection keeps it to itself. rustls
/// resolves a certificate for every ClientHello, resumed or not.
pub(crate) fn noting_server_names(config: Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = Arc::unwrap_or_clone(config);
    config.cert_resolver = Arc::new(NotingServerName(config.cert_resolver.clone()));
    Arc::new(config)
}

/// Forgets what an earlier resolution on this thread saw.
pub(crate) fn forget() {
    SEEN.set(None);
}

/// The server name the last resolution since [`forget`] saw: `None` if none ran, else the
/// name asked for, if any.
pub(crate) fn seen() -> Option<Option<String>> {
    SEEN.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str) -> Vec<String> {
        labels(name).expect("valid")
    }

    #[test]
    fn a_wildcard_label_matches_exactly_one_label_anywhere() {
        assert!(matches(&l("*.example.com"), &l("www.example.com")));
        assert!(matches(&l("*.example.com"), &l("WWW.Example.COM")));
        assert!(!matches(&l("*.example.com"), &l("example.com")));
        assert!(!matches(&l("*.example.com"), &l("a.b.example.com")));
        assert!(matches(&l("*.google.*"), &l("mail.google.de")));
        assert!(!matches(&l("*.google.*"), &l("mail.google.co.uk")));
        assert!(matches(&l("api.*.org"), &l("api.foo.org")));
        assert!(matches(&l("localhost"), &l("localhost.")));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        assert!(labels("").is_none());
        assert!(labels("a..b").is_none());
        assert!(labels("w*.example.com").is_none());
        assert!(labels(&["a"; MAX_LABELS + 1].join(".")).is_none());
        assert!(labels(&["a"; MAX_LABELS].join(".")).is_some());
    }
}
