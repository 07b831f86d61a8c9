//! The http_server example over real loopback sockets: pipelined and split requests are each
//! answered exactly once.

mod support;

#[path = "../examples/shared/http.rs"]
#[allow(dead_code)]
mod http;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use http::{ResponseChecker, REQUEST};

/// Reads until `n` responses arrived, then checks nothing more comes.
fn expect_responses(s: &mut TcpStream, n: usize) {
    let mut checker = ResponseChecker::default();
    let mut got = 0;
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    while got < n {
        let k = s.read(&mut buf).expect("read responses");
        assert!(k > 0, "server closed after {got} of {n} responses");
        got += checker
            .feed(&buf[..k])
            .expect("a byte differs from the fixed response");
    }
    assert_eq!(got, n, "more responses than requests");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    match s.read(&mut buf) {
        Ok(0) => panic!("server closed a keep-alive connection"),
        Ok(k) => panic!("{k} unexpected bytes after {n} responses"),
        Err(e) => assert!(matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

#[test]
fn a_request_split_byte_by_byte_is_answered_once() {
    let server = support::start("http_server", &[]);
    let mut s = connect(server.port);
    for b in REQUEST {
        s.write_all(&[*b]).expect("write");
        std::thread::sleep(Duration::from_millis(2));
    }
    expect_responses(&mut s, 1);
}

#[test]
fn sixteen_pipelined_requests_in_one_segment_get_sixteen_responses() {
    let server = support::start("http_server", &[]);
    let mut s = connect(server.port);
    s.write_all(&REQUEST.repeat(16)).expect("write");
    expect_responses(&mut s, 16);
    // The connection stays usable.
    s.write_all(REQUEST).expect("write");
    expect_responses(&mut s, 1);
}

#[test]
fn a_request_straddling_two_reads_is_answered_once() {
    let server = support::start("http_server", &[]);
    let mut s = connect(server.port);
    let mut two = REQUEST.repeat(2);
    let cut = REQUEST.len() + REQUEST.len() - 3; // inside the second terminator
    let tail = two.split_off(cut);
    s.write_all(&two).expect("write");
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&tail).expect("write");
    expect_responses(&mut s, 2);
}

#[test]
fn many_pipelined_requests_beyond_one_batch_are_all_answered() {
    let server = support::start("http_server", &[]);
    let mut s = connect(server.port);
    s.write_all(&REQUEST.repeat(1000)).expect("write");
    expect_responses(&mut s, 1000);
}
