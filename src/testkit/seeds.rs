//! Captured Linux frames and the committed seed corpus of the fuzz targets
//! (`fuzz/seeds/<target>/<name>`, written by `cargo run --example write_seeds` in `fuzz/`),
//! built with the same record encoders the fuzzers use.

use super::fuzz::{kind, rec, tag};

/// Captured frames (the annotated versions are the unit tests of `src/wire/`): Linux
/// IPv4 and IPv6 SYNs to port 8080, an ARP request and a neighbour solicitation for
/// 198.18.0.2 / 2001:2::2, and a bare Linux ACK.
pub const CAPTURED: [(&str, &str); 5] = [
    (
        "linux-syn-v4",
        "02000000000202000000000108004500003cd7e540004006d6aec6120001c6120002ddec1f900e8bcbd100000000a002faf0aced0000020405b40402080a750ac712000000000103030a",
    ),
    (
        "linux-syn-v6",
        "02000000000202000000000186dd600590c800280640200100020000000000000000000000012001000200000000000000000000000282081f9062f85dd800000000a002fd20ccf80000020405a00402080a8a17516e000000000103030a",
    ),
    (
        "arp-request",
        "ffffffffffff02000000000108060001080006040001020000000001c6120001000000000000c6120002",
    ),
    (
        "ndp-solicit",
        "3333ff00000202000000000186dd6000000000203aff20010002000000000000000000000001ff0200000000000000000001ff0000028700379300000000200100020000000000000000000000020101020000000001",
    ),
    (
        "linux-ack-v4",
        "020000000002020000000001080045000028 83e540004006 2ac3c6120001c6120002ddf21f9087d2541a31f7ca7650 10003f4d900000",
    ),
];

/// Decode hex digits, ignoring anything else (spaces).
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| {
            let v = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16)).unwrap_or(0) as u8;
            (v(p.first()) << 4) | v(p.get(1))
        })
        .collect()
}

/// The committed seed corpus: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, h) in CAPTURED {
        out.push(("frames", name.to_string(), hex(h)));
    }
    let cat = |parts: Vec<Vec<u8>>| parts.concat();
    // Client 0 (IPv6, echo): connect, echo a GET, close from the client side.
    out.push((
        "stack",
        "echo-v6-close".to_string(),
        cat(vec![
            rec::connect(0),
            rec::template(0, kind::DATA, 0, 0),
            rec::template(0, kind::ACK, 0, 0),
            rec::template(0, kind::FIN, 0, 0),
            rec::template(0, kind::ACK, 0, 0),
            rec::advance(3_000),
        ]),
    ));
    // Client 1 (IPv4, http): request, response, client FIN; client 2 (close mode).
    out.push((
        "stack",
        "http-and-close".to_string(),
        cat(vec![
            rec::connect(1),
            rec::template(1, kind::DATA, 0, 0x20),
            rec::template(1, kind::ACK, 0, 0),
            rec::template(1, kind::FIN, 0, 0),
            rec::connect(2),
            rec::template(2, kind::ACK, 0, 0),
            rec::template(2, kind::FIN, 0, 0),
        ]),
    ));
    // Client 3 (IPv6, discard): bulk data, zero window, RST in window, re-SYN.
    out.push((
        "stack",
        "discard-rst-resyn".to_string(),
        cat(vec![
            rec::connect(3),
            rec::template(3, kind::DATA, 1400, 0x40),
            rec::template(3, kind::WINDOW, 0, 0),
            rec::template(3, kind::RESYN, 0, 0),
            rec::template(3, kind::OFF, 5, 0),
            rec::template(3, kind::RST, 10, 0),
        ]),
    ));
    // Client 5 (IPv4, echo, bare SYN): echo with the window closed, timers, shutdown.
    out.push((
        "stack",
        "echo-zero-window-shutdown".to_string(),
        cat(vec![
            rec::template(5, kind::SYN, 7, 0),
            rec::template(5, kind::ACK, 0, 0),
            rec::template(5, kind::WINDOW, 0, 0),
            rec::template(5, kind::DATA, 100, 0x40),
            rec::advance(1_000),
            vec![tag::CLOSE_ALL],
            rec::advance(5_000),
        ]),
    ));
    // Raw captured Linux SYN among templates.
    out.push((
        "stack",
        "raw-linux-syn".to_string(),
        cat(vec![rec::frame(&hex(CAPTURED[0].1)), rec::connect(4)]),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::conn::State;
    use crate::testkit::fuzz::{generate, mutate, Frames, Mutation, Session};
    use crate::testkit::{parse_frame, Peer, Rng, SYN};
    use crate::wire::TcpFlags;

    fn state_count(s: &Session, st: State) -> usize {
        s.net.states()[st as usize]
    }

    /// Run records without the final drain.
    fn run_records(data: &[u8]) -> Session {
        let mut s = Session::new(false);
        s.feed(data);
        s
    }

    /// RFC 9293 §3.5: the template SYN and cookie ACK reach ESTABLISHED, for IPv4 and IPv6.
    #[test]
    fn templates_reach_established_rfc9293_3_5() {
        let s = run_records(&[rec::connect(0), rec::connect(1)].concat());
        assert_eq!(state_count(&s, State::Established), 2);
        assert_eq!(s.clients[0].snd_nxt, s.clients[0].iss.wrapping_add(1));
    }

    /// Echo (RFC 862): the client model absorbs the echoed bytes, and a further ACK at
    /// the new RCV.NXT is acceptable (no drop counted).
    #[test]
    fn template_data_is_echoed_and_absorbed() {
        let mut s = run_records(&rec::connect(0));
        let before = s.clients[0].rcv_nxt;
        s.record(tag::TEMPLATE, &rec::template(0, kind::DATA, 0, 0)[1..]);
        let echoed = s.sent.iter().map(|x| x.len()).sum::<u32>();
        assert_eq!(echoed, 27, "the GET echoed: {:?}", s.sent);
        assert_eq!(s.clients[0].rcv_nxt, before.wrapping_add(27));
        let drops = s.net.drops_counted();
        s.record(tag::TEMPLATE, &rec::template(0, kind::ACK, 0, 0)[1..]);
        assert_eq!(s.net.drops_counted(), drops);
    }

    /// Every committed seed runs clean (RFC 9293 §3.6 closes, nothing left after the
    /// drain); the captured Linux SYNs are answered with a SYN-ACK when checksums are checked.
    #[test]
    fn seeds_run_clean() {
        for (target, name, bytes) in seeds() {
            match target {
                "stack" => Session::run(&bytes),
                _ => {
                    Frames::default().run(&bytes);
                    let mut net = crate::testkit::fuzz::server(true);
                    let sent = net.inject(&bytes);
                    if name.starts_with("linux-syn") {
                        assert!(
                            sent.iter()
                                .any(|s| s.flags == TcpFlags::SYN | TcpFlags::ACK),
                            "{name}: no SYN-ACK"
                        );
                    }
                }
            }
        }
    }

    /// A mangled record applies its mutations to the template's frame and, when asked,
    /// fixes the checksums: a SYN whose SEQ moved by +1000 is still answered (RFC 9293
    /// §3.10.7.2), with SEG.ACK = the moved SEQ + 1.
    #[test]
    fn mangled_syn_is_answered_at_its_moved_seq_rfc9293_3_10_7_2() {
        let t = rec::template(1, kind::SYN, 0x0001, 0x0f);
        let m = rec::mutation(4, 32_000, TcpFlags::SYN.0);
        let mut s = Session::new(true);
        s.feed(&rec::mangled(&t, 1, &m, true));
        let iss = 0x0001_0001u32;
        let a = s
            .sent
            .iter()
            .find(|x| x.flags.contains(SYN))
            .expect("a SYN-ACK");
        assert_eq!(a.ack, iss.wrapping_add(1000 + 1));
        s.feed(&rec::mangled(&t, 1, &m, false));
        assert!(
            s.sent.is_empty(),
            "a stale checksum is dropped: {:?}",
            s.sent
        );
    }

    /// The TCP mutations find the header behind any IP version and leave the frame
    /// parseable once re-checksummed.
    #[test]
    fn tcp_mutations_edit_the_tcp_header() {
        let p = Peer::v6(4000);
        let f = p.frame(SYN, 5, 0, b"", p.syn_options);
        let mut g = mutate(f, &[Mutation::TcpFlagsSeq(0x12, -5)]);
        crate::testkit::fix_checksums(&mut g);
        let seg = parse_frame(&g);
        assert_eq!((seg.flags, seg.seq), (TcpFlags(0x12), 0));
    }

    /// The hardening generator's records run clean for a few seeds (the long run is
    /// `tests/harden.rs`).
    #[test]
    fn generated_records_run_clean() {
        for seed in 0..4 {
            let mut s = Session::new(seed % 2 == 0);
            s.feed(&generate(&mut Rng::new(seed), 2_000));
            assert_eq!(s.records, 2_000);
            s.finish();
        }
    }
}
