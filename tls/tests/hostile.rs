//! Hostile input to a TLS server on the simulated OS: each case closes cleanly (or, for a
//! ClientHello in 1-byte pieces, completes), delivers no plaintext, panics nowhere and leaves no
//! slot or descriptor behind.

mod common;

use common::*;
use usockets_core::{Loop, SocketId};
use usockets_shim_sim::{PeerId, SimNet, SimShim};
use usockets_tls::Versions;

type L = Loop<T<SimShim>>;

/// A TLS server on the simulated OS and a raw peer connected to it.
fn server_and_raw_peer() -> (SimNet, L, PeerId) {
    let (net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    let (_, _, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        usockets_tls::TlsContext::plain(),
    );
    let peer = net.peer_connect(port).expect("peer");
    l.run_once(Some(0)).expect("run");
    (net, l, peer)
}

fn spin(l: &mut L, n: usize) {
    for _ in 0..n {
        l.run_once(Some(10)).expect("run");
    }
}

/// The server socket closed, never delivered plaintext, and nothing is left open.
fn closed_cleanly(net: &SimNet, l: &mut L) {
    spin(l, 20);
    let s = server_end(l).expect("accepted");
    assert_eq!(
        l.ext().count(|e| *e == Ev::Close { s }),
        1,
        "the server socket closed"
    );
    assert!(
        l.ext().received(s).is_empty(),
        "no plaintext from hostile bytes"
    );
    assert_eq!(l.slots_in_use()[0], 0, "its slot was released");
    // The listener remains; nothing else.
    assert_eq!(net.open_fds(), 1, "no descriptor left but the listener");
}

/// A record header: type handshake (22), version 3.3, `len`.
fn header(len: u16) -> Vec<u8> {
    let [hi, lo] = len.to_be_bytes();
    vec![22, 3, 3, hi, lo]
}

#[test]
fn plaintext_garbage_closes() {
    let (net, mut l, peer) = server_and_raw_peer();
    net.peer_send(peer, b"\x00\x01\x02 this is not TLS at all \xff\xfe");
    closed_cleanly(&net, &mut l);
}

#[test]
fn an_oversized_record_length_closes() {
    let (net, mut l, peer) = server_and_raw_peer();
    let mut bytes = header(0xFFFF);
    bytes.extend_from_slice(&[0u8; 64]);
    net.peer_send(peer, &bytes);
    closed_cleanly(&net, &mut l);
}

#[test]
fn a_truncated_record_then_fin_closes() {
    let (net, mut l, peer) = server_and_raw_peer();
    let mut bytes = header(100);
    bytes.extend_from_slice(&[1u8; 10]);
    net.peer_send(peer, &bytes);
    spin(&mut l, 5);
    let s = server_end(&l).expect("accepted");
    assert_eq!(
        l.ext().count(|e| *e == Ev::Close { s }),
        0,
        "a partial record waits for the rest"
    );
    net.peer_shutdown(peer);
    closed_cleanly(&net, &mut l);
}

#[test]
fn a_client_hello_in_one_byte_pieces_gets_an_answer() {
    let (net, mut l, peer) = server_and_raw_peer();
    let hello = client_hello();
    assert!(hello.len() > 100, "a real ClientHello");
    for b in &hello {
        net.peer_send(peer, std::slice::from_ref(b));
        l.run_once(Some(0)).expect("run");
    }
    spin(&mut l, 5);
    let answer = net.peer_recv(peer);
    assert!(
        !answer.is_empty(),
        "the server answered the reassembled ClientHello"
    );
    assert_eq!(answer[0], 22, "with a handshake record (ServerHello)");
    let s = server_end(&l).expect("accepted");
    assert_eq!(l.ext().count(|e| *e == Ev::Close { s }), 0, "still open");
}

/// Our client and server, handshake done; returns (net, loop, client, server).
fn established() -> (SimNet, L, SocketId, SocketId) {
    let (net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    l.ext_mut().greeting = b"hi".to_vec();
    let (_, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        pki.client(Versions::Both),
    );
    let c = connect_local(&mut l, cc, port);
    for _ in 0..200 {
        if server_end(&l).is_some_and(|s| l.ext().received(s) == b"hi") {
            break;
        }
        l.run_once(Some(10)).expect("run");
    }
    let s = server_end(&l).expect("accepted");
    assert_eq!(l.ext().received(s), b"hi", "handshake done, data flowed");
    (net, l, c, s)
}

#[test]
fn garbage_after_the_handshake_closes_without_delivering_it() {
    let (net, mut l, c, s) = established();
    // Bytes that are no record, sent past the client's TLS layer.
    assert_eq!(l.write_raw(c, b"\x17\x03\x03\x00\x05garbage", false), 12);
    spin(&mut l, 20);
    assert_eq!(
        l.ext().count(|e| *e == Ev::Close { s }),
        1,
        "the server closed"
    );
    assert_eq!(l.ext().received(s), b"hi", "nothing more delivered");
    spin(&mut l, 20);
    assert_eq!(l.slots_in_use()[0], 0, "both ends closed and released");
    assert_eq!(net.open_fds(), 1, "only the listener is left");
}

#[test]
fn data_after_close_notify_is_not_delivered() {
    let (_net, mut l, c, s) = established();
    l.shutdown(c);
    let _ = l.write_raw(c, b"\x17\x03\x03\x00\x05after", false);
    spin(&mut l, 20);
    assert_eq!(
        l.ext().count(|e| *e == Ev::Close { s }),
        1,
        "close_notify closed it"
    );
    assert_eq!(l.ext().received(s), b"hi", "nothing after close_notify");
}
