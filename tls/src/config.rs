//! TLS configurations: what a context's accepted sockets (server) and connects (client) use,
//! built from PEM files or from certificates and keys in memory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sni::ServerNames;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};

/// A context's TLS configuration (the layer state of a context, see
/// [`Cx::set_layer_context`](usockets_core::Cx::set_layer_context)). Sockets a context
/// accepts use the server side, connects the client side. A TLS context never talks in the
/// clear: a connect from one without a client side fails (`on_connect_error`, EINVAL), and a
/// socket it accepts without a server side closes on its first bytes. Cheap to clone: child
/// contexts created after it was set share it (set it before creating children).
#[derive(Clone, Default)]
pub struct TlsContext {
    pub(crate) server: Option<Arc<ServerConfig>>,
    pub(crate) client: Option<Arc<ClientConfig>>,
    /// The SNI table the server side resolves certificates with, when it has one.
    pub(crate) names: Option<Arc<ServerNames>>,
    /// Sessions give back buffer memory whenever they go idle.
    pub(crate) low_memory: bool,
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsContext")
            .field("server", &self.server.is_some())
            .field("client", &self.client.is_some())
            .field("names", &self.names)
            .field("low_memory", &self.low_memory)
            .finish()
    }
}

impl TlsContext {
    /// No TLS: the context's sockets are plain.
    pub fn plain() -> TlsContext {
        TlsContext::default()
    }

    /// Accepted sockets speak TLS as servers with `config`.
    pub fn server(config: Arc<ServerConfig>) -> TlsContext {
        TlsContext::plain().with_server(config)
    }

    /// Connects speak TLS as clients with `config`.
    pub fn client(config: Arc<ClientConfig>) -> TlsContext {
        TlsContext::plain().with_client(config)
    }

    /// This configuration with a server side. The context keeps a copy of `config` whose
    /// certificate resolver also notes the server name each client asks for (rustls'
    /// unbuffered server connection does not tell it, and [`info`](crate::info) does).
    #[must_use]
    pub fn with_server(mut self, config: Arc<ServerConfig>) -> TlsContext {
        self.server = Some(crate::sni::noting_server_names(config));
        self
    }

    /// This configuration with a client side.
    #[must_use]
    pub fn with_client(mut self, config: Arc<ClientConfig>) -> TlsContext {
        self.client = Some(config);
        self
    }

    /// This configuration remembering `names`, the SNI table its server side resolves
    /// certificates with (see [`server_config_with_names`](crate::server_config_with_names)),
    /// so that [`server_names`](TlsContext::server_names) finds it.
    #[must_use]
    pub fn with_server_names(mut self, names: Arc<ServerNames>) -> TlsContext {
        self.names = Some(names);
        self
    }

    /// The SNI table of the server side, if it was built with one: patterns may be added and
    /// removed while the server runs.
    pub fn server_names(&self) -> Option<&Arc<ServerNames>> {
        self.names.as_ref()
    }

    /// This configuration with low-memory sessions (`ssl_prefer_low_memory_usage`): a session
    /// frees its buffers each time they empty instead of keeping them for the next records.
    #[must_use]
    pub fn with_low_memory(mut self, low_memory: bool) -> TlsContext {
        self.low_memory = low_memory;
        self
    }

    /// Whether any socket of the context speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.server.is_some() || self.client.is_some()
    }
}

/// Why a TLS configuration could not be built. Names the file it concerns.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or holds no valid PEM item of the kind wanted.
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    Rustls(rustls::Error),
    /// An OpenSSL-style cipher list (see [`select_tls12_suites`](crate::select_tls12_suites))
    /// is malformed or selects no TLS 1.2 suite the provider has.
    Ciphers {
        /// The cipher list as given.
        spec: String,
        /// What went wrong.
        problem: String,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::File { path, problem } => write!(f, "{}: {problem}", path.display()),
            TlsError::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
            TlsError::Ciphers { spec, problem } => write!(f, "cipher list {spec:?}: {problem}"),
        }
    }
}

impl std::error::Error for TlsError {}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Rustls(e)
    }
}

/// Protocol versions to offer: TLS 1.2 and 1.3 unless narrowed (never below 1.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.3 and 1.2.
    #[default]
    Both,
    /// TLS 1.3 only.
    Tls13,
    /// TLS 1.2 only.
    Tls12,
}

impl Versions {
    pub(crate) fn list(self) -> &'static [&'static SupportedProtocolVersion] {
        static BOTH: &[&SupportedProtocolVersion] =
            &[&rustls::version::TLS13, &rustls::version::TLS12];
        static V13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
        static V12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
        match self {
            Versions::Both => BOTH,
            Versions::Tls13 => V13,
            Versions::Tls12 => V12,
        }
    }
}

/// The crypto provider the configurations use unless given another: rustls on ring.
pub fn default_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How a configuration is built: the protocol versions, the crypto provider (its randomness
/// too) and the clock certificates are checked against. Tests inject their own randomness
/// (a provider whose `secure_random` is seeded) and time (a [`TimeProvider`] on a simulated
/// clock).
#[derive(Clone, Debug)]
pub struct Options {
    /// The versions to offer.
    pub versions: Versions,
    /// The crypto provider.
    pub provider: Arc<CryptoProvider>,
    /// The clock; `None`: the system's.
    pub time: Option<Arc<dyn TimeProvider>>,
}

impl Default for Options {
    fn default() -> Self {
        Options::new(Versions::Both)
    }
}

impl Options {
    /// `versions`, rustls on ring, the system clock.
    pub fn new(versions: Versions) -> Options {
        Options {
            versions,
            provider: default_provider(),
            time: None,
        }
    }

    /// These options with certificates checked against `time`.
    #[must_use]
    pub fn with_time(mut self, time: Arc<dyn TimeProvider>) -> Options {
        self.time = Some(time);
        self
    }

    fn time(&self) -> Arc<dyn TimeProvider> {
        self.time
            .clone()
            .unwrap_or_else(|| Arc::new(rustls::time_provider::DefaultTimeProvider))
    }

    /// A server config builder with these options, up to the choice of client checks.
    pub(crate) fn server_builder(
        &self,
    ) -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>, TlsError> {
        Ok(
            ServerConfig::builder_with_details(self.provider.clone(), self.time())
                .with_protocol_versions(self.versions.list())?,
        )
    }

    /// A client config builder with these options, up to the choice of server checks.
    pub(crate) fn client_builder(
        &self,
    ) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, TlsError> {
        Ok(
            ClientConfig::builder_with_details(self.provider.clone(), self.time())
                .with_protocol_versions(self.versions.list())?,
        )
    }
}

/// The certificates of a PEM file, in order (leaf first for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |problem: String| TlsError::File {
        path: path.to_owned(),
        problem,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error("no certificate in the file".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#1, SEC1 or PKCS#8).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        path: path.to_owned(),
        problem: format!("no usable private key: {e}"),
    })
}

/// A server configuration from a certificate chain and its key, built as `options` say.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    options: &Options,
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = options
        .server_builder()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// A server configuration that requires client certificates issued by one of `roots`
/// (mutual TLS); otherwise as [`server_config`].
pub fn server_config_with_client_auth(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Vec<CertificateDer<'static>>,
    options: &Options,
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = options
        .server_builder()?
        .with_client_cert_verifier(client_verifier(roots, options)?)
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// A verifier requiring client certificates issued by one of `roots`.
pub(crate) fn client_verifier(
    roots: Vec<CertificateDer<'static>>,
    options: &Options,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(root_store(roots)?),
        options.provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))
}

/// The platform's trusted root certificates (the system store, through
/// `rustls-native-certs`); an error when it has none usable.
pub fn platform_roots() -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let problem = match found.errors.first() {
            Some(e) => format!("no platform root certificates: {e}"),
            None => "no platform root certificates".to_owned(),
        };
        return Err(TlsError::File {
            path: PathBuf::new(),
            problem,
        });
    }
    Ok(found.certs)
}

/// A root store holding `roots`.
fn root_store(roots: Vec<CertificateDer<'static>>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    Ok(store)
}

/// A server configuration from PEM files: the certificate chain and the private key.
pub fn server_config_from_pem(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    server_config(
        load_certs(cert_file)?,
        load_key(key_file)?,
        &Options::default(),
    )
}

/// How a client checks the server it connects to.
#[derive(Clone, Debug)]
pub enum Verify {
    /// The chain must lead to one of these roots, and the certificate must name the host the
    /// connect was made to (or its IP address).
    Roots(Vec<CertificateDer<'static>>),
    /// No check at all: anyone in the middle can read and change the traffic. Only for tests
    /// and for talking to a known peer over a channel already trusted.
    NoVerification,
}

/// A client configuration checking servers as `verify` says, built as `options` say.
pub fn client_config(verify: Verify, options: &Options) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with_cert(verify, None, options)
}

/// [`client_config`] that presents `identity` (a certificate chain and its key) to servers
/// asking for a client certificate.
pub fn client_config_with_cert(
    verify: Verify,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    options: &Options,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = options.client_builder()?;
    let verifying = match verify {
        Verify::Roots(roots) => builder.with_root_certificates(root_store(roots)?),
        Verify::NoVerification => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                options.provider.signature_verification_algorithms,
            ))),
    };
    let config = match identity {
        Some((chain, key)) => verifying.with_client_auth_cert(chain, key)?,
        None => verifying.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A client configuration trusting the roots of a PEM file (a CA file).
pub fn client_config_from_ca_file(ca_file: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    client_config(Verify::Roots(load_certs(ca_file)?), &Options::default())
}

/// Accepts every server certificate; signatures are still checked (the handshake must be
/// with whoever holds the key of the certificate shown).
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
