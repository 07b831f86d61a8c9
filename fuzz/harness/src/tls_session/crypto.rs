//! Deterministic stand-in crypto for the `tls_session` target: the same input makes the same
//! handshake, byte for byte, in every process, and no handshake spends time on public-key
//! arithmetic.
//!
//! The provider is rustls's *ring* provider (its AEAD sealing every record, under rustls's own
//! record layer, key schedule and handshake state machines) with these parts replaced:
//!
//! * **randomness** (`secure_random`): a seeded generator ([`SeededRng`]) per thread, reset by
//!   [`reseed`] at the start of every run (client and server randoms, session ids);
//! * **key exchange**: a stand-in named X25519 whose share is 32 bytes from that generator and
//!   whose shared secret is the XOR of the two shares. ring's own X25519 draws from the system's
//!   randomness, which no provider can replace, and costs most of a handshake;
//! * **signatures**: a stand-in Ed25519 whose "signature" is a keyless digest of the message
//!   (`tag`), which the client's verifier ([`TagVerifier`]) checks; the server's
//!   "certificate" is a placeholder of a few bytes that nobody parses (the verifier accepts
//!   any), which spares every handshake the encoding, hashing and parsing of a real one;
//! * **HMAC** (under HKDF in TLS 1.3 and the PRF in TLS 1.2): a keyed 256-bit mix ([`MixHmac`]).
//!   The key schedule runs dozens of HMACs per handshake, most of a handshake's time once the
//!   public-key work is gone. The keys it derives differ for every label and transcript, as
//!   real ones do (so a record reflected to its sender still fails to decrypt);
//! * **time**: a clock stopped at one instant ([`FixedTime`]).
//!
//! The records themselves are real: ring's AES-128-GCM or ChaCha20-Poly1305 seals them, so a
//! byte changed in flight fails to decrypt, as it would in production. The transcript hash is
//! ring's SHA-256. None of the rest is secure, and none of it is meant to be: the target fuzzes
//! the TLS layer of usockets and its sessions, not the cryptography.
//!
//! ## TLS 1.2 runs resume, the same way every time
//!
//! A TLS 1.2 run resumes a session by its id instead of making a full handshake: half the
//! work. Each thread makes, per TLS 1.2 configuration, one full handshake first
//! ([`needs_warm_up`]); the client's store ([`OneSession`]) keeps that thread's session and
//! never forgets it, and the server's (rustls's in-memory cache) finds it again for every run.
//! The session is the same in every thread and process (the generator is reseeded), so every
//! resumed handshake is too. TLS 1.3 runs make a full handshake each: with the public-key work
//! gone, a resumed TLS 1.3 handshake costs as much (its PSK binder and extra key schedule
//! stages), and its tickets, used once each, would make every run's keys differ.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use usockets_shim_sim::SeededRng;
use usockets_tls::rustls;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::crypto::tls12::PrfUsingHmac;
use rustls::crypto::tls13::HkdfUsingHmac;
use rustls::crypto::{
    hmac, ActiveKeyExchange, CipherSuiteCommon, CryptoProvider, GetRandomFailed, KeyProvider,
    SecureRandom, SharedSecret, SupportedKxGroup,
};
use rustls::ffdhe_groups::FfdheGroup;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::{Signer, SigningKey};
use rustls::time_provider::TimeProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, NamedGroup, PeerMisbehaved,
    ServerConfig, SignatureAlgorithm, SignatureScheme, SupportedCipherSuite,
    SupportedProtocolVersion, Tls12CipherSuite, Tls13CipherSuite,
};
use usockets_tls::{Options, Versions};

/// Where the generator starts in every run.
const SEED: u64 = 0x7573_6f63_6b65_7473;

/// 2027-01-15T08:00:00Z: the stopped clock.
const NOW_SECS: u64 = 1_800_000_000;

thread_local! {
    /// This thread's generator: a run and its loop stay on one thread, and tests that replay
    /// inputs on several threads at once do not share one.
    static RNG: RefCell<SeededRng> = RefCell::new(SeededRng::new(SEED));
}

/// Restarts this thread's generator: the next run draws the same bytes as every run before.
pub(crate) fn reseed() {
    RNG.with(|r| *r.borrow_mut() = SeededRng::new(SEED));
}

fn fill(buf: &mut [u8]) {
    RNG.with(|r| {
        let mut r = r.borrow_mut();
        for chunk in buf.chunks_mut(8) {
            let word = r.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    });
}

#[derive(Debug)]
struct Seeded;

impl SecureRandom for Seeded {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        fill(buf);
        Ok(())
    }
}

/// The stand-in key exchange (see the module docs).
#[derive(Debug)]
struct XorKx;

struct XorShare([u8; 32]);

impl SupportedKxGroup for XorKx {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let mut share = [0u8; 32];
        fill(&mut share);
        Ok(Box::new(XorShare(share)))
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        None
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

impl ActiveKeyExchange for XorShare {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        if peer.len() != self.0.len() {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        let mut secret = self.0;
        for (s, p) in secret.iter_mut().zip(peer) {
            *s ^= p;
        }
        Ok(SharedSecret::from(&secret[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.0
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// The stand-in signature of `message`: 64 bytes (an Ed25519 signature's size) spun out of a
/// 64-bit digest of it. Keyless: whoever knows the message can make it.
fn tag(message: &[u8]) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in message.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    h ^= message.len() as u64;
    let mut rng = SeededRng::new(h);
    let mut out = Vec::with_capacity(64);
    for _ in 0..8 {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out
}

const SCHEME: SignatureScheme = SignatureScheme::ED25519;

#[derive(Debug)]
struct TagKey;

#[derive(Debug)]
struct TagSigner;

impl SigningKey for TagKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SCHEME)
            .then(|| Box::new(TagSigner) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ED25519
    }
}

impl Signer for TagSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(tag(message))
    }

    fn scheme(&self) -> SignatureScheme {
        SCHEME
    }
}

/// Every private key it is given loads as the stand-in signer.
#[derive(Debug)]
struct TagKeys;

impl KeyProvider for TagKeys {
    fn load_private_key(&self, _: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Error> {
        Ok(Arc::new(TagKey))
    }
}

/// The client's check of the server: the stand-in signature over the handshake, and no
/// certificate at all (see the module docs).
#[derive(Debug)]
struct TagVerifier;

impl TagVerifier {
    fn check(
        message: &[u8],
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if dss.scheme == SCHEME && dss.signature() == tag(message).as_slice() {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::BadSignature))
        }
    }
}

impl ServerCertVerifier for TagVerifier {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        _: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Self::check(message, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        _: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Self::check(message, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SCHEME]
    }
}

/// The stand-in HMAC (see the module docs): 256 bits of state, keyed by the mix of the key.
struct MixHmac;

struct MixKey([u64; 4]);

const MIX_INIT: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// Mixes `parts`, as one string, into `h`; the result is the new state.
fn mix<'a>(mut h: [u64; 4], parts: impl IntoIterator<Item = &'a [u8]>) -> [u64; 4] {
    let mut n = 0usize;
    let mut absorb = |h: &mut [u64; 4], w: u64| {
        let lane = n % 4;
        h[lane] = (h[lane] ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h[lane] ^= h[lane] >> 29;
        h[(lane + 1) % 4] = h[(lane + 1) % 4].wrapping_add(h[lane].rotate_left(23));
        n += 1;
    };
    // Eight bytes at a time across the parts, as if they were one string.
    let mut word = [0u8; 8];
    let mut fill = 0;
    let mut total = 0u64;
    for part in parts {
        total += part.len() as u64;
        let mut rest = part;
        if fill > 0 {
            let k = (8 - fill).min(rest.len());
            word[fill..fill + k].copy_from_slice(&rest[..k]);
            fill += k;
            rest = &rest[k..];
            if fill < 8 {
                continue;
            }
            absorb(&mut h, u64::from_le_bytes(word));
        }
        let mut words = rest.chunks_exact(8);
        for w in &mut words {
            absorb(&mut h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let tail = words.remainder();
        word[..tail.len()].copy_from_slice(tail);
        fill = tail.len();
    }
    word[fill..].fill(0);
    absorb(&mut h, u64::from_le_bytes(word));
    absorb(&mut h, total);
    for lane in 0..4 {
        let x = h[lane] ^ h[(lane + 3) % 4].rotate_left(17);
        h[lane] = SeededRng::new(x).next_u64();
    }
    h
}

impl hmac::Hmac for MixHmac {
    fn with_key(&self, key: &[u8]) -> Box<dyn hmac::Key> {
        Box::new(MixKey(mix(MIX_INIT, [key])))
    }

    fn hash_output_len(&self) -> usize {
        32
    }
}

impl hmac::Key for MixKey {
    fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> hmac::Tag {
        let parts = std::iter::once(first)
            .chain(middle.iter().copied())
            .chain(std::iter::once(last));
        let h = mix(self.0, parts);
        let mut tag = [0u8; 32];
        for (out, lane) in tag.chunks_mut(8).zip(h) {
            out.copy_from_slice(&lane.to_le_bytes());
        }
        hmac::Tag::new(&tag)
    }

    fn tag_len(&self) -> usize {
        32
    }
}

static MIX_HMAC: MixHmac = MixHmac;
static HKDF: HkdfUsingHmac<'static> = HkdfUsingHmac(&MIX_HMAC);
static PRF: PrfUsingHmac<'static> = PrfUsingHmac(&MIX_HMAC);

/// `base` (one of ring's suites) with the stand-in HMAC under its key schedule. Made once per
/// variant and process (rustls wants suites that live for ever).
fn with_mix_hmac(base: SupportedCipherSuite) -> SupportedCipherSuite {
    let common = |c: &CipherSuiteCommon| CipherSuiteCommon {
        suite: c.suite,
        hash_provider: c.hash_provider,
        confidentiality_limit: c.confidentiality_limit,
    };
    match base {
        SupportedCipherSuite::Tls13(s) => {
            SupportedCipherSuite::Tls13(Box::leak(Box::new(Tls13CipherSuite {
                common: common(&s.common),
                hkdf_provider: &HKDF,
                aead_alg: s.aead_alg,
                quic: None,
            })))
        }
        SupportedCipherSuite::Tls12(s) => {
            SupportedCipherSuite::Tls12(Box::leak(Box::new(Tls12CipherSuite {
                common: common(&s.common),
                prf_provider: &PRF,
                kx: s.kx,
                sign: s.sign,
                aead_alg: s.aead_alg,
            })))
        }
    }
}

static RANDOM: Seeded = Seeded;
static KX: XorKx = XorKx;
static KEYS: TagKeys = TagKeys;

thread_local! {
    /// The TLS 1.2 client sessions of this thread, per configuration: runs on other threads
    /// (parallel tests) never replace them.
    static SESSIONS: RefCell<Vec<Option<Tls12ClientSessionValue>>> =
        RefCell::new(vec![None; VARIANTS]);
    /// Which configurations this thread warmed up.
    static WARM: Cell<[bool; VARIANTS]> = const { Cell::new([false; VARIANTS]) };
}

/// The client's session store (see the module docs): its thread's TLS 1.2 session of the
/// configuration, never forgotten; no TLS 1.3 tickets.
#[derive(Debug)]
struct OneSession(usize);

impl ClientSessionStore for OneSession {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        SESSIONS.with(|s| s.borrow_mut()[self.0] = Some(value));
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        SESSIONS.with(|s| s.borrow()[self.0].clone())
    }

    /// Never forgets: rustls forgets a session whose records failed to decrypt, which the
    /// run's tampering makes happen on purpose.
    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {}

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        None
    }
}

/// Whether this thread still has to warm configuration `v` up (see the module docs); marks
/// it warm.
pub(crate) fn needs_warm_up(v: usize) -> bool {
    WARM.with(|w| {
        let mut all = w.get();
        let cold = !all[v % VARIANTS];
        all[v % VARIANTS] = true;
        w.set(all);
        cold
    })
}

/// Whether runs of configuration `v` resume a session (TLS 1.2) rather than make a full
/// handshake (TLS 1.3).
pub(crate) fn resumes(v: usize) -> bool {
    v % 2 == 1
}

/// The stopped clock.
#[derive(Debug)]
struct FixedTime;

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(NOW_SECS)))
    }
}

/// One server and one client configuration that speak to each other.
pub(crate) struct Pair {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

/// The variants a run picks from: TLS 1.3 or 1.2, AES-128-GCM or ChaCha20-Poly1305.
pub(crate) const VARIANTS: usize = 4;

/// The configurations of variant `v` (`v % VARIANTS`), built once per process.
pub(crate) fn pair(v: usize) -> &'static Pair {
    static PAIRS: OnceLock<Vec<Pair>> = OnceLock::new();
    &PAIRS.get_or_init(|| (0..VARIANTS).map(build).collect())[v % VARIANTS]
}

fn build(v: usize) -> Pair {
    use rustls::crypto::ring::cipher_suite as cs;
    static TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    static TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let (versions, list, cipher) = match v {
        0 => (Versions::Tls13, TLS13, cs::TLS13_AES_128_GCM_SHA256),
        1 => (
            Versions::Tls12,
            TLS12,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        2 => (Versions::Tls13, TLS13, cs::TLS13_CHACHA20_POLY1305_SHA256),
        _ => (
            Versions::Tls12,
            TLS12,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    };
    let provider = Arc::new(CryptoProvider {
        cipher_suites: vec![with_mix_hmac(cipher)],
        kx_groups: vec![&KX],
        // Unused: the client's verifier checks the stand-in signatures itself.
        signature_verification_algorithms: rustls::crypto::ring::default_provider()
            .signature_verification_algorithms,
        secure_random: &RANDOM,
        key_provider: &KEYS,
    });
    let time: Arc<dyn TimeProvider> = Arc::new(FixedTime);
    let options = Options {
        versions,
        provider: Arc::clone(&provider),
        time: Some(Arc::clone(&time)),
    };
    let chain = vec![CertificateDer::from(
        b"tls_session stand-in certificate".to_vec(),
    )];
    // The key provider ignores the key's bytes (see TagKeys).
    let placeholder = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(vec![0u8; 16]));
    let server = usockets_tls::server_config(chain, placeholder, &options).expect("server config");
    let mut server = (*server).clone();
    // One TLS 1.3 ticket after each handshake (rustls sends two by default): the
    // post-handshake message stays in every run, at half the cost.
    server.send_tls13_tickets = 1;
    let mut client = ClientConfig::builder_with_details(provider, time)
        .with_protocol_versions(list)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TagVerifier))
        .with_no_client_auth();
    client.resumption = Resumption::store(Arc::new(OneSession(v)));
    Pair {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}
