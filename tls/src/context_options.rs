//! [`ContextOptions`]: a context's TLS configuration from files, as the C ABI's
//! `struct us_socket_context_options_t` describes it. The C ABI's `us_create_socket_context`
//! (`ssl = 1`) and `us_socket_context_add_server_name` build through here, so both APIs read
//! the same files the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig};

use crate::config::{client_config_with_cert, load_certs, Options, TlsContext, TlsError, Verify};
use crate::sni::ServerNames;

/// How a client checks servers when no CA file is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WithoutCa {
    /// Against the platform's trusted roots (the Rust API's default).
    #[default]
    PlatformRoots,
    /// Not at all: what the C library does without a CA file (the C ABI's default).
    NoVerification,
}

/// The files and switches of a TLS context: `us_socket_context_options_t`, in Rust.
///
/// * `cert_file` and `key_file` (PEM: a certificate chain, leaf first; a PKCS#1, SEC1 or PKCS#8
///   key): the context serves TLS with them. Without them its server side has no default
///   certificate: handshakes fail (the client is told, the socket closes) unless an SNI entry
///   serves the name asked for. One without the other is an error.
/// * `passphrase`: decrypts an encrypted PKCS#8 key.
/// * `ca_file`: a server requires client certificates issued by it; a client checks servers
///   against it (chain and name). A client with `cert_file` and `key_file` presents them to
///   servers that ask.
/// * `dh_params_file`: read and checked to hold DH parameters, then unused: every key exchange
///   rustls offers is (EC)DHE over named groups, which needs no parameters.
/// * `ciphers`: an OpenSSL-style list choosing the TLS 1.2 suites (TLS 1.3 suites are not
///   affected, as in OpenSSL); see [`select_tls12_suites`](crate::select_tls12_suites).
/// * `low_memory`: sessions keep less memory while idle (see [`Session`](crate::Session)).
///
/// A file that is missing or unusable fails [`build`](ContextOptions::build) with an error
/// naming it.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// The private key (PEM).
    pub key_file: Option<PathBuf>,
    /// The certificate chain (PEM, leaf first).
    pub cert_file: Option<PathBuf>,
    /// The passphrase of an encrypted key.
    pub passphrase: Option<String>,
    /// DH parameters (PEM): checked, not needed.
    pub dh_params_file: Option<PathBuf>,
    /// Trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// An OpenSSL-style cipher list for TLS 1.2.
    pub ciphers: Option<String>,
    /// Keep less memory per idle session.
    pub low_memory: bool,
    /// How a client checks servers when there is no `ca_file`.
    pub without_ca: WithoutCa,
}

impl ContextOptions {
    /// The context these options describe, built as `options` say (versions, provider, clock).
    /// It has a server side (for the sockets it accepts) and a client side (for connects).
    pub fn build(&self, options: &Options) -> Result<TlsContext, TlsError> {
        let options = self.narrowed(options)?;
        if let Some(dh) = &self.dh_params_file {
            check_dh_params(dh)?;
        }
        let roots = self.ca_file.as_deref().map(load_certs).transpose()?;
        let identity = self.identity()?;
        let default = match &identity {
            Some((chain, key)) => Some(Arc::new(
                CertifiedKey::from_der(chain.clone(), key.clone_key(), &options.provider)
                    .map_err(|e| self.key_error(e))?,
            )),
            None => None,
        };
        let names = Arc::new(ServerNames::new(default));
        let server = self.server(&options, roots.clone(), Arc::clone(&names))?;
        let client = self.client(&options, roots, identity)?;
        Ok(TlsContext::server(server)
            .with_client(client)
            .with_server_names(names)
            .with_low_memory(self.low_memory))
    }

    /// The certificate and key an SNI entry serves (`us_socket_context_add_server_name`):
    /// `cert_file`, `key_file` and `passphrase`; the other options do not apply to an entry.
    pub fn certified_key(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
        let (chain, key) = self.identity()?.ok_or_else(|| TlsError::File {
            path: PathBuf::new(),
            problem: "a server name needs a certificate and a key file".into(),
        })?;
        CertifiedKey::from_der(chain, key, provider)
            .map(Arc::new)
            .map_err(|e| self.key_error(e))
    }

    /// The client side alone, as [`build`](ContextOptions::build) makes it: to change how a
    /// context's connects verify after it was built.
    pub fn client_config(&self, options: &Options) -> Result<Arc<ClientConfig>, TlsError> {
        let options = self.narrowed(options)?;
        let roots = self.ca_file.as_deref().map(load_certs).transpose()?;
        self.client(&options, roots, self.identity()?)
    }

    /// `options` with the cipher list applied to its provider.
    fn narrowed(&self, options: &Options) -> Result<Options, TlsError> {
        let mut options = options.clone();
        if let Some(spec) = &self.ciphers {
            options.provider = Arc::new(crate::ciphers::provider_with_cipher_list(
                &options.provider,
                spec,
            )?);
        }
        Ok(options)
    }

    /// The certificate chain and key, if both files are given.
    #[allow(clippy::type_complexity)]
    fn identity(
        &self,
    ) -> Result<
        Option<(
            Vec<CertificateDer<'static>>,
            rustls::pki_types::PrivateKeyDer<'static>,
        )>,
        TlsError,
    > {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let key = crate::key::load_key_with_passphrase(key, self.passphrase.as_deref())?;
                Ok(Some((load_certs(cert)?, key)))
            }
            (None, None) => Ok(None),
            (Some(cert), None) => Err(TlsError::File {
                path: cert.clone(),
                problem: "a certificate without a key file".into(),
            }),
            (None, Some(key)) => Err(TlsError::File {
                path: key.clone(),
                problem: "a key without a certificate file".into(),
            }),
        }
    }

    /// A key that does not fit its certificate (or that the provider cannot use), named by
    /// its file.
    fn key_error(&self, e: rustls::Error) -> TlsError {
        TlsError::File {
            path: self.key_file.clone().unwrap_or_default(),
            problem: format!("unusable with the certificate: {e}"),
        }
    }

    fn server(
        &self,
        options: &Options,
        roots: Option<Vec<CertificateDer<'static>>>,
        names: Arc<ServerNames>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let builder = options.server_builder()?;
        let config = match roots {
            Some(roots) => builder
                .with_client_cert_verifier(crate::config::client_verifier(roots, options)?)
                .with_cert_resolver(names),
            None => builder.with_no_client_auth().with_cert_resolver(names),
        };
        Ok(Arc::new(config))
    }

    fn client(
        &self,
        options: &Options,
        roots: Option<Vec<CertificateDer<'static>>>,
        identity: Option<(
            Vec<CertificateDer<'static>>,
            rustls::pki_types::PrivateKeyDer<'static>,
        )>,
    ) -> Result<Arc<ClientConfig>, TlsError> {
        let verify = match (roots, self.without_ca) {
            (Some(roots), _) => Verify::Roots(roots),
            (None, WithoutCa::PlatformRoots) => Verify::Roots(crate::config::platform_roots()?),
            (None, WithoutCa::NoVerification) => Verify::NoVerification,
        };
        client_config_with_cert(verify, identity, options)
    }
}

/// Checks that `path` holds DH parameters (PEM). They are not used: see [`ContextOptions`].
fn check_dh_params(path: &Path) -> Result<(), TlsError> {
    let text = std::fs::read_to_string(path).map_err(|e| TlsError::File {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    let found = [
        "-----BEGIN DH PARAMETERS-----",
        "-----BEGIN X9.42 DH PARAMETERS-----",
    ]
    .iter()
    .any(|h| text.contains(h));
    if found {
        Ok(())
    } else {
        Err(TlsError::File {
            path: path.to_owned(),
            problem: "no DH PARAMETERS PEM block".into(),
        })
    }
}
