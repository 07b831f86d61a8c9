//! What the layer's own buffering must get right, on the simulated OS, against rustls peers
//! driven by hand (so the test chooses how their records are cut): records arriving a byte at
//! a time or cut anywhere (both versions, both memory modes), a `write2` making one record of a
//! header and its payload, the server name a client asked for in `info` after a full and a
//! resumed handshake, and writes between fragments of a handshake message rustls is joining.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use common::*;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use usockets_core::{Loop, SocketId};
use usockets_shim_sim::{PeerId, SimNet, SimShim};
use usockets_tls::{TlsContext, Verify, Versions};

type L = Loop<T<SimShim>>;

/// An echo server on the simulated OS.
fn echo_server() -> (SimNet, L, u16) {
    echo_server_with(false)
}

/// An echo server on the simulated OS, its sessions in low-memory mode or not.
fn echo_server_with(low_memory: bool) -> (SimNet, L, u16) {
    let (net, mut l) = sim();
    l.ext_mut().echo = true;
    let pki = Pki::new(&["127.0.0.1"]);
    let server = pki.server(Versions::Both).with_low_memory(low_memory);
    let (_, _, port) = contexts(&mut l, server, TlsContext::plain());
    (net, l, port)
}

fn client_config() -> Arc<rustls::ClientConfig> {
    client_config_for(Versions::Both)
}

fn client_config_for(versions: Versions) -> Arc<rustls::ClientConfig> {
    usockets_tls::client_config(
        Verify::NoVerification,
        &usockets_tls::Options::new(versions),
    )
    .expect("client config")
}

/// A rustls client on a raw peer of the simulated network.
struct Client {
    conn: ClientConnection,
    peer: PeerId,
    /// Plaintext from the server not yet taken.
    received: Vec<u8>,
}

impl Client {
    /// Connects to `port` asking for `name`, and handshakes.
    fn handshake(
        net: &SimNet,
        l: &mut L,
        port: u16,
        config: &Arc<rustls::ClientConfig>,
        name: &str,
    ) -> Client {
        let name = ServerName::try_from(name.to_owned()).expect("name");
        let conn = ClientConnection::new(config.clone(), name).expect("client");
        let peer = net.peer_connect(port).expect("peer");
        let mut client = Client {
            conn,
            peer,
            received: Vec::new(),
        };
        for _ in 0..100 {
            client.flush(net);
            l.run_once(Some(0)).expect("run");
            client.pump(net);
            if !client.conn.is_handshaking() {
                // Let the server's tickets (TLS 1.3) and the client's Finished cross.
                for _ in 0..5 {
                    client.flush(net);
                    l.run_once(Some(0)).expect("run");
                    client.pump(net);
                }
                return client;
            }
        }
        panic!("no handshake: {:?}", l.ext().events);
    }

    /// The records the client has for the server.
    fn records(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut out).expect("records");
        }
        out
    }

    fn flush(&mut self, net: &SimNet) {
        let out = self.records();
        net.peer_send(self.peer, &out);
    }

    /// Takes what the server sent (its plaintext into `received`); returns its raw bytes.
    fn pump(&mut self, net: &SimNet) -> Vec<u8> {
        let back = net.peer_recv(self.peer);
        let mut rd = back.as_slice();
        while !rd.is_empty() {
            self.conn.read_tls(&mut rd).expect("read");
            self.conn
                .process_new_packets()
                .expect("records from the server");
            match self.conn.reader().read_to_end(&mut self.received) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        back
    }

    /// Plaintext the server sent since last asked.
    fn plaintext(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.received)
    }
}

/// Runs the loop and the client until the client got `want` bytes of plaintext.
fn read_echo(net: &SimNet, l: &mut L, client: &mut Client, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    for _ in 0..1000 {
        l.run_once(Some(0)).expect("run");
        client.pump(net);
        got.extend_from_slice(&client.plaintext());
        if got.len() >= want {
            return got;
        }
    }
    panic!("only {} of {want} bytes back", got.len());
}

#[test]
fn records_arriving_a_byte_at_a_time_are_put_together() {
    let (net, mut l, port) = echo_server();
    let mut client = Client::handshake(&net, &mut l, port, &client_config(), "127.0.0.1");
    let message: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    client.conn.writer().write_all(&message).expect("plaintext");
    let records = client.records();
    for byte in records.chunks(1) {
        net.peer_send(client.peer, byte);
        l.run_once(Some(0)).expect("run");
    }
    let got = read_echo(&net, &mut l, &mut client, message.len());
    assert_eq!(got, message, "the echo, byte for byte");
    assert!(l.ext().padding_ok);
}

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn messages_cut_anywhere_are_echoed_whole_in_both_versions_and_modes() {
    // Messages of up to 40 KB (several records), their records cut at random points: every
    // cut leaves a partial record (or several records and a part) in the server session,
    // which low-memory mode frees each time it empties.
    let cases = [Versions::Tls13, Versions::Tls12].map(|v| [(v, false), (v, true)]);
    for (versions, low_memory) in cases.into_iter().flatten() {
        let (net, mut l, port) = echo_server_with(low_memory);
        let config = client_config_for(versions);
        let mut client = Client::handshake(&net, &mut l, port, &config, "127.0.0.1");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..100 {
            let len = 1 + rng.below(40_000);
            let message: Vec<u8> = (0..len).map(|i| (i ^ round) as u8).collect();
            client.conn.writer().write_all(&message).expect("plaintext");
            let records = client.records();
            let mut rest = records.as_slice();
            while !rest.is_empty() {
                let n = (1 + rng.below(6000)).min(rest.len());
                net.peer_send(client.peer, &rest[..n]);
                rest = &rest[n..];
                if rng.below(2) == 0 {
                    l.run_once(Some(0)).expect("run");
                }
            }
            let got = read_echo(&net, &mut l, &mut client, len);
            assert!(
                got == message,
                "{versions:?}, low memory {low_memory}: round {round}, {len} bytes"
            );
        }
    }
}

#[test]
fn write2_makes_one_record_of_a_small_header_and_its_payload() {
    let (net, mut l, port) = echo_server();
    let mut client = Client::handshake(&net, &mut l, port, &client_config(), "127.0.0.1");
    let s: SocketId = server_end(&l).expect("accepted");
    let (header, payload) = (b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), [b'x'; 1000]);
    assert_eq!(l.write2(s, header, &payload), header.len() + payload.len());
    l.run_once(Some(0)).expect("run");
    let raw = client.pump(&net);
    // One application-data record (type 23): its header says it holds all the rest.
    assert_eq!(raw[0], 23, "an application data record");
    let len = u16::from_be_bytes([raw[3], raw[4]]) as usize;
    assert_eq!(5 + len, raw.len(), "one record for header and payload");
    let got = client.plaintext();
    assert_eq!(&got[..header.len()], header);
    assert_eq!(&got[header.len()..], payload.as_slice());
}

#[test]
fn the_server_name_asked_for_is_in_info_after_a_full_and_a_resumed_handshake() {
    let (net, mut l, port) = echo_server();
    let config = client_config();
    for (round, resumed) in [(0, false), (1, true)] {
        let client = Client::handshake(&net, &mut l, port, &config, "www.example.test");
        let s = l
            .ext()
            .events
            .iter()
            .filter_map(|e| match e {
                Ev::Open { s, client: false } => Some(*s),
                _ => None,
            })
            .nth(round)
            .expect("accepted");
        let info = usockets_tls::info(&l, s).expect("session");
        assert!(!info.handshaking);
        assert_eq!(info.resumed, resumed, "round {round}");
        assert_eq!(info.server_name.as_deref(), Some("www.example.test"));
        net.peer_close(client.peer);
        for _ in 0..5 {
            l.run_once(Some(0)).expect("run");
        }
    }
}

/// The hand-driven server's turn: it reads what the client sent (plaintext appended to
/// `got`) and returns the records it has for the client.
fn server_turn(
    net: &SimNet,
    peer: PeerId,
    server: &mut rustls::ServerConnection,
    got: &mut Vec<u8>,
) -> Vec<u8> {
    let from_client = net.peer_recv(peer);
    let mut rd = from_client.as_slice();
    while !rd.is_empty() {
        server.read_tls(&mut rd).expect("read");
        server
            .process_new_packets()
            .expect("records from the client");
    }
    match server.reader().read_to_end(got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => panic!("read: {e}"),
    }
    let mut out = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut out).expect("records");
    }
    out
}

#[test]
fn writes_between_fragments_of_a_post_handshake_message_go_through() {
    // A hand-driven rustls server cuts its records at 64 bytes, so its session tickets (sent
    // after the handshake) span several records, which the client session joins in place across
    // inputs. The client application writes after every piece: each write must show rustls the
    // input it is still joining, and the session must neither fail nor lose a byte.
    let (net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    let (_, cc, _) = contexts(&mut l, TlsContext::plain(), pki.client(Versions::Tls13));
    let mut config = (*usockets_tls::server_config(
        pki.chain.clone(),
        pki.key.clone_key(),
        &usockets_tls::Options::new(Versions::Tls13),
    )
    .expect("server config"))
    .clone();
    config.max_fragment_size = Some(64);
    config.send_tls13_tickets = 4;
    let mut server = rustls::ServerConnection::new(Arc::new(config)).expect("server");
    let port = net.peer_listen(0);
    let c = connect_local(&mut l, cc, port);
    l.run_once(Some(0)).expect("run");
    let peer = net.peer_accept(port).expect("the client connected");
    let (mut got, mut written) = (Vec::new(), 0);
    for _ in 0..100 {
        let out = server_turn(&net, peer, &mut server, &mut got);
        if out.is_empty() && written > 0 {
            break;
        }
        // Less than a record at a time: a message's fragments span several inputs.
        for piece in out.chunks(40) {
            net.peer_send(peer, piece);
            l.run_once(Some(0)).expect("run");
            if usockets_tls::info(&l, c).is_some_and(|i| !i.handshaking) {
                written += l.write(c, b"x", false);
            }
        }
    }
    for _ in 0..10 {
        l.run_once(Some(0)).expect("run");
        server_turn(&net, peer, &mut server, &mut got);
    }
    let info = usockets_tls::info(&l, c).expect("session");
    assert_eq!(info.error, None, "the client session did not fail");
    assert!(written >= 10, "the client wrote between pieces: {written}");
    assert_eq!(got, vec![b'x'; written], "every byte written arrived");
}
