//! Property tests for `synack::wire`: parse ∘ emit round trips for every `Repr`, the
//! checksum against a plain RFC 1071 reference, RFC 1624 updates against recomputation,
//! RFC 1982 sequence arithmetic, and "no panic on any bytes" for every parser chain.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use synack::testkit::seeds::{hex, CAPTURED};
use synack::wire::{
    checksum, ip_protocol, ipv6, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame,
    EthernetRepr, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, NdpRepr, SeqNumber, TcpFlags,
    TcpOptions, TcpPacket, TcpRepr,
};

// ---------------------------------------------------------------- strategies

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

fn mac() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>()
}

/// Options with all their SACK blocks fitting in 40 bytes; unused SACK slots are zero
/// (as `parse` leaves them).
fn tcp_options() -> impl Strategy<Value = TcpOptions> {
    (
        any::<Option<u16>>(),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        any::<Option<(u32, u32)>>(),
        any::<[(u32, u32); 4]>(),
        0u8..=4,
    )
        .prop_map(
            |(mss, window_scale, sack_permitted, timestamps, blocks, count)| {
                let mut o = TcpOptions {
                    mss,
                    window_scale,
                    sack_permitted,
                    timestamps,
                    ..TcpOptions::default()
                };
                let fit = sack_blocks_that_fit(&o);
                o.sack_count = count.min(fit as u8);
                let n = usize::from(o.sack_count);
                o.sack_blocks[..n].copy_from_slice(&blocks[..n]);
                o
            },
        )
}

/// Independent of the implementation: option bytes used by MSS/TS/SACK_PERM/WS in the
/// Linux layout, and how many 8-byte SACK blocks (after a 4-byte prefix) fit in 40.
fn sack_blocks_that_fit(o: &TcpOptions) -> usize {
    let mut used = 0;
    used += if o.mss.is_some() { 4 } else { 0 };
    used += match (o.timestamps.is_some(), o.sack_permitted) {
        (true, _) => 12,
        (false, true) => 4,
        (false, false) => 0,
    };
    used += if o.window_scale.is_some() { 4 } else { 0 };
    (40 - used - 4) / 8
}

fn tcp_flags() -> impl Strategy<Value = TcpFlags> {
    any::<u8>().prop_map(TcpFlags)
}

// ---------------------------------------------------------------- reference checksum

/// RFC 1071 §4.1, written the obvious way: 16-bit big-endian words, odd tail padded with
/// zero, carries folded after every add, complemented at the end.
fn reference_checksum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for w in data.chunks(2) {
        let word = (u32::from(w[0]) << 8) | u32::from(w.get(1).copied().unwrap_or(0));
        s += word;
        if s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
    }
    !(s as u16)
}

// ---------------------------------------------------------------- no-panic chain

/// Every parser on `bytes`, as every layer, calling every accessor once `new_checked`
/// has passed. Returns nothing: the property is "does not panic".
fn parse_everything(bytes: &[u8]) {
    let a4 = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    let b4 = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    let a6 = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    let b6 = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

    if let Ok(eth) = EthernetFrame::new_checked(bytes) {
        let _ = (eth.dst_addr(), eth.src_addr(), eth.vlan(), eth.ethertype());
        let _ = eth.header_len();
        let _ = EthernetRepr::parse(&eth);
        let payload = eth.into_payload();
        match eth.ethertype() {
            EtherType::ARP => {
                let _ = ArpRepr::parse(payload);
            }
            EtherType::IPV4 => ipv4_chain(payload),
            EtherType::IPV6 => ipv6_chain(payload),
            _ => {}
        }
    }
    // Every layer directly on the same bytes.
    let _ = EthernetRepr::parse(&EthernetFrame::new_unchecked(bytes));
    let _ = ArpRepr::parse(bytes);
    if let Ok(arp) = ArpPacket::new_checked(bytes) {
        let _ = (arp.hardware_type(), arp.protocol_type(), arp.hardware_len());
        let _ = (arp.protocol_len(), arp.operation(), arp.sender_mac());
        let _ = (arp.sender_ip(), arp.target_mac(), arp.target_ip());
    }
    ipv4_chain(bytes);
    ipv6_chain(bytes);
    tcp_chain(bytes, &a4, &b4);
    tcp_chain(bytes, &IpAddr::V6(a6), &IpAddr::V6(b6));
    let _ = TcpOptions::parse(bytes);
    let _ = NdpRepr::parse(bytes, &a6, &b6);
    let _ = NdpRepr::parse(bytes, &Ipv6Addr::UNSPECIFIED, &b6);
    // Unchecked views must also be refused cleanly by the Reprs.
    let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(bytes), true);
    let _ = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(bytes));
    let _ = TcpRepr::parse(&TcpPacket::new_unchecked(bytes), &a4, &b4, true);
}

fn ipv4_chain(bytes: &[u8]) {
    for verify in [true, false] {
        if let Ok(ip) = Ipv4Packet::new_checked(bytes) {
            let _ = (ip.version(), ip.header_len(), ip.dscp_ecn(), ip.total_len());
            let _ = (
                ip.ident(),
                ip.dont_frag(),
                ip.more_frags(),
                ip.frag_offset(),
            );
            let _ = (
                ip.ttl(),
                ip.protocol(),
                ip.checksum(),
                ip.src_addr(),
                ip.dst_addr(),
            );
            let _ = (
                ip.verify_checksum(),
                ip.options(),
                ip.payload(),
                ip.is_fragment(),
            );
            if let Ok(r) = Ipv4Repr::parse(&ip, verify) {
                assert_eq!(r.payload_len, ip.payload().len());
                tcp_chain(ip.into_payload(), &IpAddr::V4(r.src), &IpAddr::V4(r.dst));
            }
        }
    }
}

fn ipv6_chain(bytes: &[u8]) {
    if let Ok(ip) = Ipv6Packet::new_checked(bytes) {
        let _ = (
            ip.version(),
            ip.traffic_class(),
            ip.flow_label(),
            ip.payload_len(),
        );
        let _ = (
            ip.next_header(),
            ip.hop_limit(),
            ip.src_addr(),
            ip.dst_addr(),
        );
        let _ = ip.payload();
        if let Ok(r) = Ipv6Repr::parse(&ip) {
            assert_eq!(r.payload_len, ip.payload().len());
            let payload = ip.into_payload();
            let _ = NdpRepr::parse(payload, &r.src, &r.dst);
            tcp_chain(payload, &IpAddr::V6(r.src), &IpAddr::V6(r.dst));
        }
    }
}

fn tcp_chain(bytes: &[u8], src: &IpAddr, dst: &IpAddr) {
    if let Ok(p) = TcpPacket::new_checked(bytes) {
        let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number());
        let _ = (
            p.header_len(),
            p.flags(),
            p.window_len(),
            p.checksum(),
            p.urgent_at(),
        );
        let _ = (p.options(), p.payload(), p.verify_checksum(src, dst));
        for verify in [true, false] {
            if let Ok(r) = TcpRepr::parse(&p, src, dst, verify) {
                let _ = (r.header_len(), r.buffer_len(), r.segment_len());
                assert_eq!(r.payload, p.payload());
            }
        }
    }
}

/// Real frames to mutate: the captured Linux IPv4 SYN (74 bytes), IPv6 SYN (94), ARP
/// request (42) and NDP solicitation (86) of the kit's seed corpus (see the unit tests in
/// `src/wire/` for the annotated versions).
fn seed_frames() -> Vec<Vec<u8>> {
    CAPTURED[..4].iter().map(|(_, h)| hex(h)).collect()
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn ethernet_round_trip(
        src in mac(), dst in mac(), vlan in any::<Option<u16>>(),
        ethertype in any::<u16>().prop_filter("not a tag", |t| *t != 0x8100 && *t != 0x88a8),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let r = EthernetRepr { src, dst, vlan, ethertype };
        let mut buf = vec![0xa5; r.header_len()];
        r.emit(&mut buf);
        buf.extend_from_slice(&tail);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), r);
        prop_assert_eq!(f.payload(), &tail[..]);
    }

    #[test]
    fn arp_round_trip(
        request in any::<bool>(), sender_mac in mac(), sender_ip in ipv4(),
        target_mac in mac(), target_ip in ipv4(),
    ) {
        let operation = if request { ArpOperation::Request } else { ArpOperation::Reply };
        let r = ArpRepr { operation, sender_mac, sender_ip, target_mac, target_ip };
        let mut buf = [0xa5; ArpRepr::LEN];
        r.emit(&mut buf);
        prop_assert_eq!(ArpRepr::parse(&buf).unwrap(), r);
    }

    #[test]
    fn ipv4_round_trip(
        src in ipv4(), dst in ipv4(), protocol in any::<u8>(), ttl in any::<u8>(),
        payload_len in 0usize..1500, pad in 0usize..20,
    ) {
        let r = Ipv4Repr { src, dst, protocol, payload_len, ttl };
        let mut buf = vec![0xa5; r.buffer_len() + pad];
        r.emit(&mut buf);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert!(p.dont_frag());
        prop_assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), r);
        prop_assert_eq!(p.payload().len(), payload_len);
    }

    #[test]
    fn ipv6_round_trip(
        src in ipv6(), dst in ipv6(),
        next_header in any::<u8>().prop_filter("upper layer", |n| !ipv6::is_extension_header(*n)),
        hop_limit in any::<u8>(), payload_len in 0usize..1500, pad in 0usize..20,
    ) {
        let r = Ipv6Repr { src, dst, next_header, payload_len, hop_limit };
        let mut buf = vec![0xa5; r.buffer_len() + pad];
        r.emit(&mut buf);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv6Repr::parse(&p).unwrap(), r);
        prop_assert_eq!(p.payload().len(), payload_len);
    }

    #[test]
    fn ndp_round_trip(
        solicit in any::<bool>(), src in ipv6(), dst in ipv6(),
        target in ipv6().prop_filter("unicast target", |a| !a.is_multicast()),
        mac in proptest::option::of(mac()), r_flag in any::<bool>(),
        s_flag in any::<bool>(), o_flag in any::<bool>(),
    ) {
        // RFC 4861 §7.1.1/§7.1.2 receiver rules the generator must respect.
        prop_assume!(!src.is_unspecified());
        let r = if solicit {
            NdpRepr::NeighborSolicit { target, source_mac: mac }
        } else {
            NdpRepr::NeighborAdvert {
                flags_router: r_flag,
                flags_solicited: s_flag && !dst.is_multicast(),
                flags_override: o_flag,
                target,
                target_mac: mac,
            }
        };
        let mut buf = vec![0xa5; r.buffer_len()];
        r.emit(&mut buf, &src, &dst);
        prop_assert_eq!(NdpRepr::parse(&buf, &src, &dst).unwrap(), r);
    }

    #[test]
    fn tcp_options_round_trip(o in tcp_options()) {
        let mut buf = [0xa5u8; 40];
        let n = o.emit(&mut buf);
        prop_assert_eq!(n, o.buffer_len());
        prop_assert!(n <= 40 && n % 4 == 0);
        prop_assert_eq!(TcpOptions::parse(&buf[..n]).unwrap(), o);
    }

    #[test]
    fn tcp_round_trip(
        v6 in any::<bool>(), a4 in ipv4(), b4 in ipv4(), a6 in ipv6(), b6 in ipv6(),
        src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(),
        ack in any::<u32>(), flags in tcp_flags(), window in any::<u16>(),
        options in tcp_options(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (src, dst) = if v6 {
            (IpAddr::V6(a6), IpAddr::V6(b6))
        } else {
            (IpAddr::V4(a4), IpAddr::V4(b4))
        };
        let r = TcpRepr {
            src_port, dst_port, seq: SeqNumber(seq), ack: SeqNumber(ack), flags, window,
            options, payload: &payload,
        };
        let mut buf = vec![0xa5; r.buffer_len() + 3];
        r.emit(&mut buf, &src, &dst);
        prop_assert_eq!(&buf[r.buffer_len()..], &[0xa5; 3]);
        let p = TcpPacket::new_checked(&buf[..r.buffer_len()]).unwrap();
        prop_assert!(p.verify_checksum(&src, &dst));
        prop_assert_eq!(p.urgent_at(), 0);
        prop_assert_eq!(TcpRepr::parse(&p, &src, &dst, true).unwrap(), r);
        prop_assert_eq!(
            r.segment_len(),
            payload.len() as u32
                + u32::from(flags.contains(TcpFlags::SYN))
                + u32::from(flags.contains(TcpFlags::FIN))
        );
    }

    /// RFC 1071: the fast 8-bytes-at-a-time sum equals the word-by-word reference.
    #[test]
    fn checksum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        prop_assert_eq!(checksum::finish(checksum::sum(&data)), reference_checksum(&data));
    }

    /// Large buffers of 0xff exercise the carry paths hardest.
    #[test]
    fn checksum_matches_reference_saturated(len in 0usize..70_000, fill in 0xf0u8..=0xff) {
        let data = vec![fill; len];
        prop_assert_eq!(checksum::finish(checksum::sum(&data)), reference_checksum(&data));
    }

    /// RFC 1071 §2(B)/(C): sums of pieces combine, if each piece but the last is even.
    #[test]
    fn checksum_combines(
        a in proptest::collection::vec(any::<u8>(), 0..200).prop_map(|mut v| { v.truncate(v.len() & !1); v }),
        b in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        prop_assert_eq!(
            checksum::fold(checksum::combine(checksum::sum(&a), checksum::sum(&b))),
            checksum::fold(checksum::sum(&whole))
        );
    }

    /// RFC 1624 eqn. 3 equals a full recomputation (whenever the result is not all zeros).
    #[test]
    fn checksum_update_matches_recompute(
        words in proptest::collection::vec(any::<u16>(), 1..40),
        idx in any::<prop::sample::Index>(),
        new_word in any::<u16>(),
    ) {
        let i = idx.index(words.len());
        let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let hc = checksum::finish(checksum::sum(&bytes(&words)));
        let mut changed = words.clone();
        changed[i] = new_word;
        prop_assume!(changed.iter().any(|w| *w != 0));
        prop_assert_eq!(
            checksum::update(hc, words[i], new_word),
            checksum::finish(checksum::sum(&bytes(&changed)))
        );
    }

    #[test]
    fn checksum_update32_matches_recompute(
        words in proptest::collection::vec(any::<u32>(), 1..20),
        idx in any::<prop::sample::Index>(),
        new in any::<u32>(),
    ) {
        let i = idx.index(words.len());
        let bytes = |w: &[u32]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let hc = checksum::finish(checksum::sum(&bytes(&words)));
        let mut changed = words.clone();
        changed[i] = new;
        prop_assume!(changed.iter().any(|w| *w != 0));
        prop_assert_eq!(
            checksum::update32(hc, words[i], new),
            checksum::finish(checksum::sum(&bytes(&changed)))
        );
    }

    /// An in-place rewrite of a real header via `update32` still verifies.
    #[test]
    fn checksum_update32_in_ipv4_header(new_src in ipv4(), ttl in any::<u8>()) {
        let r = Ipv4Repr {
            src: Ipv4Addr::new(198, 18, 0, 1), dst: Ipv4Addr::new(198, 18, 0, 2),
            protocol: ip_protocol::TCP, payload_len: 40, ttl,
        };
        let mut buf = [0u8; 60];
        r.emit(&mut buf);
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        let c = checksum::update32(
            p.checksum(),
            u32::from(p.src_addr()),
            u32::from(new_src),
        );
        p.set_src_addr(new_src);
        p.set_checksum(c);
        prop_assert!(p.verify_checksum());
    }

    /// RFC 1982 §3.2 / RFC 9293 §3.4 ordering, across the wrap.
    #[test]
    fn seq_ordering(a in any::<u32>(), b in any::<u32>()) {
        let (a, b) = (SeqNumber(a), SeqNumber(b));
        prop_assert_eq!(a.lt(b), b.gt(a));
        prop_assert_eq!(a.le(b), b.ge(a));
        prop_assert!(!(a.lt(b) && b.lt(a)), "antisymmetric");
        prop_assert_eq!(a.le(b), a.lt(b) || a == b);
        prop_assert_eq!(a.diff(b), (a.0.wrapping_sub(b.0)) as i32);
        prop_assert!(a.max(b) == a || a.max(b) == b);
        prop_assert!(a.min(b) == a || a.min(b) == b);
        if a.diff(b) != i32::MIN {
            // Exactly 2^31 apart is undefined in RFC 1982; elsewhere the order is total.
            prop_assert!(a.lt(b) || b.lt(a) || a == b);
            prop_assert!(a.max(b).ge(a) && a.max(b).ge(b));
            prop_assert!(a.min(b).le(a) && a.min(b).le(b));
        }
    }

    #[test]
    fn seq_add_diff_inverse(a in any::<u32>(), n in 0u32..0x8000_0000, b in any::<u32>()) {
        let (a, b) = (SeqNumber(a), SeqNumber(b));
        prop_assert_eq!(a.add(n).diff(a), n as i32);
        prop_assert_eq!(a.add(n).sub(n), a);
        prop_assert!(a.add(n).ge(a));
        if n > 0 {
            prop_assert!(a.lt(a.add(n)));
            prop_assert!(a.sub(n).lt(a));
        }
        prop_assert_eq!(b.add(a.diff(b) as u32), a);
    }

    /// RFC 9293 §3.4: `start =< x < end` for windows shorter than 2^31. `x` is drawn
    /// anywhere, or within a few numbers of either edge, where off-by-ones live.
    #[test]
    fn seq_in_range(
        start in any::<u32>(),
        len in prop_oneof![0u32..4, 0u32..0x8000_0000, 0x7fff_fff0u32..0x8000_0000],
        at in prop_oneof![
            any::<u32>().prop_map(|x| (false, x)),
            (-3i32..4).prop_map(|d| (true, d as u32)),
            (-3i32..4).prop_map(|d| (false, d as u32)),
        ],
    ) {
        let (s, e) = (SeqNumber(start), SeqNumber(start).add(len));
        // (true, d): d from the end; (false, d): d from the start (or anywhere).
        let x = if at.0 { e.add(at.1) } else { s.add(at.1) };
        prop_assert_eq!(x.in_range(s, e), s.le(x) && x.lt(e));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Network input never panics: arbitrary bytes through every parser.
    #[test]
    fn no_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        parse_everything(&bytes);
    }

    /// Mutations of real frames reach deeper layers than random bytes do: overwrite a few
    /// bytes, then cut anywhere.
    #[test]
    fn no_panic_on_mutated_frames(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = seed_frames().swap_remove(which);
        for (i, v) in edits {
            let i = i.index(f.len());
            f[i] = v;
        }
        let cut = cut.index(f.len() + 1);
        parse_everything(&f[..cut]);
    }
}

/// The seeds parse all the way down (so the mutation test starts from valid frames).
#[test]
fn seed_frames_are_valid() {
    let seeds = seed_frames();
    let f = EthernetFrame::new_checked(&seeds[0][..]).unwrap();
    let ip = Ipv4Packet::new_checked(f.into_payload()).unwrap();
    let r = Ipv4Repr::parse(&ip, true).unwrap();
    let t = TcpPacket::new_checked(ip.into_payload()).unwrap();
    let t = TcpRepr::parse(&t, &IpAddr::V4(r.src), &IpAddr::V4(r.dst), true).unwrap();
    assert_eq!(t.flags, TcpFlags::SYN);

    let f = EthernetFrame::new_checked(&seeds[1][..]).unwrap();
    let ip = Ipv6Packet::new_checked(f.into_payload()).unwrap();
    let r = Ipv6Repr::parse(&ip).unwrap();
    let t = TcpPacket::new_checked(ip.into_payload()).unwrap();
    assert!(TcpRepr::parse(&t, &IpAddr::V6(r.src), &IpAddr::V6(r.dst), true).is_ok());

    let f = EthernetFrame::new_checked(&seeds[2][..]).unwrap();
    assert_eq!(
        ArpRepr::parse(f.payload()).unwrap().operation,
        ArpOperation::Request
    );

    let f = EthernetFrame::new_checked(&seeds[3][..]).unwrap();
    let ip = Ipv6Packet::new_checked(f.into_payload()).unwrap();
    let r = Ipv6Repr::parse(&ip).unwrap();
    assert!(matches!(
        NdpRepr::parse(ip.into_payload(), &r.src, &r.dst),
        Ok(NdpRepr::NeighborSolicit { .. })
    ));
}
