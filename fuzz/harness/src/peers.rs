//! The simulated remote peers: sending to the loop's sockets and checking what they receive.

use crate::config::Cx;
use crate::model::World;

pub(crate) fn peer_send(cx: &mut Cx) {
    let w = cx.ext_mut();
    let Some(i) = w.pick_peer() else { return };
    let len = 1 + usize::from(w.ops.u8()) * 4;
    let out = w.peers[i].out;
    let chunk = w.next_chunk(out, len);
    let n = w.net.peer_send(w.peers[i].id, &chunk);
    w.chunk = chunk;
    assert!(n == 0 || n == len, "peer_send queued {n} of {len}");
    w.wrote(out, n);
}

pub(crate) fn peer_recv(w: &mut World, i: usize) {
    let p = w.peers[i].id;
    let data = w.net.peer_recv(p);
    let World { peers, streams, .. } = w;
    peers[i].inb.feed(streams, &data, "peer_recv");
    if !peers[i].gone && w.net.peer_got_fin(p) && !w.net.peer_is_reset(p) {
        peers[i].inb.check_complete(streams, "peer FIN");
    }
}
