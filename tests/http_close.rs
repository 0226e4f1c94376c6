//! Nothing after our FIN, and every complete request answered before it (RFC 9293
//! §3.10.4, §3.6; RFC 9112 §9.3.2, §9.6), driven through whole frames with a client that
//! retransmits what the server has not acknowledged and acknowledges all it receives.

mod support;

use support::*;
use synack::counters::Event;
use synack::tcp::conn::State;
use synack::tcp::responder::Mode;
use synack::tcp::Params;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// What the client read: the server's bytes in order, and whether the server's FIN came
/// right after them (never before the last byte, never with anything after it).
#[derive(Default)]
struct Read {
    data: Vec<u8>,
    fin: bool,
}

/// Take the server's segments in order; panics on data after the FIN.
fn take(peer: &mut Peer, read: &mut Read, acked: &mut u32, base: u32, segs: &[Seg]) {
    for s in segs {
        if std::env::var("TRACE").is_ok() {
            eprintln!("{s:?} rcv_nxt={}", peer.rcv_nxt);
        }
        *acked = (*acked).max(s.ack.wrapping_sub(base));
        if s.seq != peer.rcv_nxt {
            continue;
        }
        assert!(
            !read.fin || s.is_empty(),
            "server sent {s:?} after its FIN (RFC 9293 §3.10.4)"
        );
        read.data.extend(&s.payload);
        peer.rcv_nxt = peer.rcv_nxt.wrapping_add(s.len());
        read.fin |= s.flags.contains(FIN);
    }
}

/// One client segment of `stream[from..to]` (with FIN when `fin` and it ends the
/// stream); the server's answer is taken.
#[allow(clippy::too_many_arguments)]
fn send_part(
    net: &mut Net,
    peer: &mut Peer,
    stream: &[u8],
    (from, to): (usize, usize),
    fin: bool,
    base: u32,
    read: &mut Read,
    acked: &mut u32,
) {
    let mut flags = ACK | PSH;
    if fin && to == stream.len() {
        flags |= FIN;
    }
    let (seq, ack) = (base.wrapping_add(from as u32), peer.rcv_nxt);
    let o = peer.opts(net);
    let out = peer.send(net, flags, seq, ack, &stream[from..to], o);
    take(peer, read, acked, base, &out);
}

/// The client sends `stream` (its first `first` bytes in one segment, the rest in
/// segments of at most 1000 bytes, the last carrying the FIN when `fin`), then keeps acknowledging what it reads and
/// resending (in 1000-byte segments) what the server has not taken, until the server's
/// FIN is in and ours acknowledged (at most 200 rounds).
fn converse(net: &mut Net, peer: &mut Peer, stream: &[u8], first: usize, fin: bool) -> Read {
    let base = peer.snd_nxt;
    let len = stream.len() as u32;
    let end = len + u32::from(fin);
    let mut read = Read::default();
    let mut acked = 0u32;
    let r = &mut read;
    send_part(net, peer, stream, (0, first), fin, base, r, &mut acked);
    let mut from = first;
    while from < stream.len() {
        let part = (from, (from + 1000).min(stream.len()));
        send_part(net, peer, stream, part, fin, base, r, &mut acked);
        from = part.1;
    }
    for _ in 0..200 {
        if r.fin && acked >= end {
            break;
        }
        // Acknowledge what was read.
        let (seq, ack) = (base.wrapping_add(acked.min(end)), peer.rcv_nxt);
        let o = peer.opts(net);
        let out = peer.send(net, ACK, seq, ack, b"", o);
        take(peer, r, &mut acked, base, &out);
        // Resend what the server has not taken.
        if acked < end {
            let from = acked.min(len) as usize;
            let part = (from, (from + 1000).min(stream.len()));
            send_part(net, peer, stream, part, fin, base, r, &mut acked);
        }
    }
    peer.snd_nxt = base.wrapping_add(end);
    read
}

/// The response to each GET.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: synack\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\nsynack\n";

fn http_net(buffer_size: usize) -> Net {
    let mut cfg = config(Params::default(), Mode::Http);
    cfg.buffer_size = buffer_size;
    Net::with_config(cfg)
}

/// Byte streams equal (reported by length and first difference, not dumped).
#[track_caller]
fn same(got: &[u8], want: &[u8]) {
    let diff = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got == want,
        "got {} bytes, want {}; first difference at {diff:?}; {} responses",
        got.len(),
        want.len(),
        responses(got)
    );
}

fn responses(data: &[u8]) -> usize {
    String::from_utf8_lossy(data)
        .matches("HTTP/1.1 200 OK\r\n")
        .count()
}

/// `n` pipelined `GET / HTTP/1.1` from client port `port` (half of them in the first
/// segment), then the client's FIN, to an HTTP endpoint with a `buffer_size`-byte send
/// buffer: the client reads all `n` responses in order, then our FIN after the last byte;
/// its last ACK gets no reply and nothing is left behind.
#[track_caller]
fn pipelined_gets_then_fin_all_answered(buffer_size: usize, port: u16, n: usize) {
    let mut net = http_net(buffer_size);
    let mut peer = Peer::v4(port);
    peer.connect(&mut net);
    let stream = GET.repeat(n);
    let read = converse(&mut net, &mut peer, &stream, n / 2 * GET.len(), true);
    same(&read.data, &OK.repeat(n));
    assert!(read.fin, "no FIN after the responses");
    assert_eq!(net.event(Event::HttpRequests), n as u64);
    none(peer.tx(&mut net, ACK, b""));
    net.assert_clean();
}

/// The case: 30 pipelined `GET / HTTP/1.1` in two segments, then the client's
/// FIN: all 30 responses, then our FIN after the last byte (RFC 9112 §9.3.2: "A server
/// MAY process a sequence of pipelined requests ... but MUST send the responses to those
/// requests in the same order that the requests were received").
#[test]
fn rfc9112_9_3_2_pipelined_requests_then_fin_all_answered_first() {
    pipelined_gets_then_fin_all_answered(4096, 41_000, 30);
}

/// More responses than the send buffer holds (60 × 114 bytes in a 2048-byte buffer): the
/// requests wait for send space, and our FIN waits for them (RFC 9293 §3.10.4: the FIN
/// follows "all preceding SENDs").
#[test]
fn rfc9293_3_10_4_fin_waits_for_requests_blocked_on_send_space() {
    pipelined_gets_then_fin_all_answered(2048, 41_001, 60);
}

/// The same without a client FIN, closed by the last request's `Connection: close`: the
/// requests before it are answered first, and the bytes after it are acknowledged and
/// discarded, never answered (RFC 9112 §9.6: "MUST NOT process any further requests").
#[test]
fn rfc9112_9_6_nothing_answered_after_connection_close() {
    let mut net = http_net(2048);
    let mut peer = Peer::v4(41_002);
    peer.connect(&mut net);
    let mut stream = GET.repeat(40);
    stream.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.extend(GET.repeat(5));
    let read = converse(&mut net, &mut peer, &stream, 20 * GET.len(), false);
    let text = String::from_utf8_lossy(&read.data);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 41);
    assert!(
        text.ends_with("Connection: close\r\n\r\nsynack\n"),
        "{text}"
    );
    assert!(read.fin);
    // More requests after our FIN: acknowledged, counted, not answered.
    let n = GET.len() as u32;
    let a = one(peer.tx(&mut net, ACK | PSH, GET));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(
        net.event(Event::RxAfterCloseBytes),
        5 * u64::from(n) + u64::from(n)
    );
    assert_eq!(net.event(Event::HttpRequests), 41);
}

/// Echo data that arrives before the client's FIN is all sent back before ours, also
/// when it is more than the buffer holds (3 × 1000 bytes here into a 2048-byte buffer).
#[test]
fn rfc9293_3_10_4_echo_before_fin_all_returned_first() {
    let mut cfg = config(Params::default(), Mode::Echo);
    cfg.buffer_size = 2048;
    let mut net = Net::with_config(cfg);
    let mut peer = Peer::v4(41_003);
    peer.connect(&mut net);
    let stream: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let read = converse(&mut net, &mut peer, &stream, 1000, true);
    same(&read.data, &stream);
    assert!(read.fin);
    none(peer.tx(&mut net, ACK, b""));
    net.assert_clean();
}

/// Shutdown (`close_all`) while requests wait for send space: they are answered, then our
/// FIN; a request arriving after the close is acknowledged and discarded.
#[test]
fn rfc9293_3_10_4_close_all_flushes_pending_output_before_fin() {
    let mut net = http_net(2048);
    let mut peer = Peer::v4(41_004);
    peer.window = 2; // 256 bytes with WS 7: the responses leave slowly
    peer.connect(&mut net);
    let out = peer.tx(&mut net, ACK | PSH, &GET.repeat(30));
    let mut read = Read::default();
    let mut acked = 0;
    let base = peer.snd_nxt;
    take(&mut peer, &mut read, &mut acked, base, &out);
    assert_eq!(read.data.len(), 256);
    let clock = net.clock;
    net.stack.core.close_all(&clock);
    let out = net.advance(0);
    assert!(out.is_empty(), "nothing fits the window yet: {out:#?}");
    // A request sent after the close is not answered.
    peer.window = 502;
    let late = peer.tx(&mut net, ACK | PSH, GET);
    take(&mut peer, &mut read, &mut acked, base, &late);
    for _ in 0..50 {
        if read.fin {
            break;
        }
        let out = peer.tx(&mut net, ACK, b"");
        take(&mut peer, &mut read, &mut acked, base, &out);
    }
    assert!(read.fin);
    assert_eq!(responses(&read.data), 30);
    assert_eq!(net.event(Event::RxAfterCloseBytes), GET.len() as u64);
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), Some(State::FinWait2));
}
