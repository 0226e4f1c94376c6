//! In-memory frame port: the same [`Port`] contract as AF_XDP, over a `Vec<u8>` of frames.
//! Tests and benches inject frames with [`MemoryPort::inject`] and read what the engine
//! sent with [`MemoryPort::take_sent`]; nothing touches a NIC or needs privilege.

use super::{Frame, Port, PortStats};
use std::collections::VecDeque;

/// A port whose "wire" is two queues in memory.
#[derive(Debug)]
pub struct MemoryPort {
    mem: Vec<u8>,
    frame_size: usize,
    free: Vec<u64>,
    rx: VecDeque<Frame>,
    /// Frames staged by `send`, not yet committed (the open TX batch).
    staged: Vec<Frame>,
    /// Committed frames: what the "wire" has seen.
    tx: Vec<Frame>,
    tx_limit: usize,
    stats: PortStats,
    tx_commits: u64,
    /// Frames injected while no frame was free (the "NIC" dropped them).
    pub rx_dropped: u64,
}

impl MemoryPort {
    /// `frames` frames of `frame_size` bytes; at most `tx_limit` frames may wait in TX
    /// between `take_sent` calls (a full TX ring beyond that).
    pub fn new(frames: usize, frame_size: usize, tx_limit: usize) -> Self {
        MemoryPort {
            mem: vec![0; frames * frame_size],
            frame_size,
            free: (0..frames as u64)
                .rev()
                .map(|i| i * frame_size as u64)
                .collect(),
            rx: VecDeque::with_capacity(frames),
            staged: Vec::with_capacity(frames),
            tx: Vec::with_capacity(frames),
            tx_limit,
            stats: PortStats::default(),
            tx_commits: 0,
            rx_dropped: 0,
        }
    }

    /// Put a received frame on the RX queue (copied into a free frame). Returns false (and
    /// counts a drop) when no frame is free or it does not fit.
    pub fn inject(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.frame_size {
            self.rx_dropped += 1;
            return false;
        }
        let Some(addr) = self.free.pop() else {
            self.rx_dropped += 1;
            self.stats.rx_dropped += 1;
            return false;
        };
        let a = addr as usize;
        self.mem[a..a + bytes.len()].copy_from_slice(bytes);
        self.rx.push_back(Frame {
            addr,
            len: bytes.len() as u32,
        });
        true
    }

    /// Frames committed since the last call, in order, as owned byte vectors; their frames go
    /// back to the free pool (the "completion").
    pub fn take_sent(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.tx.len());
        self.for_each_sent(|f| out.push(f.to_vec()));
        out
    }

    /// Visit each sent frame (no allocation), then complete them.
    pub fn for_each_sent(&mut self, mut f: impl FnMut(&[u8])) {
        for fr in self.tx.drain(..) {
            let a = fr.addr as usize;
            f(&self.mem[a..a + fr.len as usize]);
            self.free.push(fr.addr);
        }
    }

    /// Frames waiting in RX.
    pub fn rx_pending(&self) -> usize {
        self.rx.len()
    }

    /// Frames in the free pool.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Frames staged in the open TX batch (sent, not yet committed).
    pub fn staged(&self) -> usize {
        self.staged.len()
    }

    /// Ring commits that published at least one frame.
    pub fn tx_commits(&self) -> u64 {
        self.tx_commits
    }
}

impl Port for MemoryPort {
    fn frame_capacity(&self) -> usize {
        self.frame_size
    }

    fn recv(&mut self, out: &mut [Frame]) -> usize {
        let n = out.len().min(self.rx.len());
        for slot in out.iter_mut().take(n) {
            if let Some(f) = self.rx.pop_front() {
                *slot = f;
            }
        }
        n
    }

    fn buffer(&mut self, addr: u64) -> &mut [u8] {
        let a = addr as usize;
        &mut self.mem[a..a + self.frame_size]
    }

    fn alloc_tx(&mut self) -> Option<u64> {
        self.free.pop()
    }

    fn send(&mut self, addr: u64, len: u32) -> bool {
        if self.tx.len() + self.staged.len() >= self.tx_limit {
            self.stats.tx_ring_full += 1;
            self.free.push(addr);
            return false;
        }
        self.staged.push(Frame { addr, len });
        true
    }

    fn commit_tx(&mut self) -> usize {
        let n = self.staged.len();
        self.tx_commits += u64::from(n > 0);
        self.tx.append(&mut self.staged);
        n
    }

    fn rollback_tx(&mut self) -> usize {
        let n = self.staged.len();
        self.free.extend(self.staged.drain(..).map(|f| f.addr));
        n
    }

    fn rx_ready(&mut self) -> usize {
        self.rx.len()
    }

    fn release(&mut self, addr: u64) {
        self.free.push(addr);
    }

    fn flush(&mut self) {
        self.commit_tx();
        self.stats.tx_kicks += u64::from(!self.tx.is_empty());
    }

    fn stats(&self) -> PortStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::TxBatch;

    #[test]
    fn inject_recv_send_take() {
        let mut p = MemoryPort::new(4, 128, 8);
        assert!(p.inject(b"hello"));
        let mut fr = [Frame { addr: 0, len: 0 }; 4];
        assert_eq!(p.recv(&mut fr), 1);
        let addr = fr[0].addr;
        assert_eq!(&p.buffer(addr)[..5], b"hello");
        p.buffer(addr)[..3].copy_from_slice(b"bye");
        assert!(p.send(addr, 3));
        p.flush();
        assert_eq!(p.take_sent(), vec![b"bye".to_vec()]);
        assert_eq!(p.free_frames(), 4);
    }

    #[test]
    fn full_pool_and_full_tx_are_counted() {
        let mut p = MemoryPort::new(1, 64, 0);
        assert!(p.inject(b"a"));
        assert!(!p.inject(b"b"));
        assert_eq!(p.rx_dropped, 1);
        let mut fr = [Frame { addr: 0, len: 0 }; 1];
        p.recv(&mut fr);
        assert!(!p.send(fr[0].addr, 1));
        assert_eq!(p.stats().tx_ring_full, 1);
        assert_eq!(p.free_frames(), 1);
    }

    #[test]
    fn tx_batch_is_published_in_one_commit() {
        let mut p = MemoryPort::new(8, 64, 8);
        let mut tx = TxBatch::new(&mut p);
        for i in 0..3u8 {
            let a = tx.alloc().expect("free frame");
            tx.buffer(a)[0] = i;
            assert!(tx.send(a, 1));
        }
        assert_eq!(tx.commit(), 3);
        assert_eq!(p.tx_commits(), 1, "three frames, one commit");
        assert_eq!(p.take_sent(), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(p.free_frames(), 8);
    }

    #[test]
    fn staged_frames_are_invisible_until_commit_and_room_counts_them() {
        let mut p = MemoryPort::new(8, 64, 2);
        for _ in 0..2 {
            let a = p.alloc_tx().expect("free frame");
            assert!(p.send(a, 1));
        }
        assert!(p.take_sent().is_empty(), "nothing committed yet");
        let a = p.alloc_tx().expect("free frame");
        assert!(!p.send(a, 1), "two staged fill a ring of two");
        assert_eq!(p.stats().tx_ring_full, 1);
        assert_eq!(p.commit_tx(), 2);
        assert_eq!(p.take_sent().len(), 2);
    }

    #[test]
    fn dropped_tx_batch_rolls_back_to_the_free_pool() {
        let mut p = MemoryPort::new(4, 64, 4);
        {
            let mut tx = TxBatch::new(&mut p);
            let a = tx.alloc().expect("free frame");
            assert!(tx.send(a, 1));
            assert_eq!(tx.port.staged(), 1);
        }
        assert_eq!(p.staged(), 0);
        assert_eq!(p.free_frames(), 4, "the staged frame came back");
        p.flush();
        assert!(
            p.take_sent().is_empty(),
            "a rolled-back frame is never sent"
        );
    }

    #[test]
    fn reserved_but_unsent_frames_return_when_the_batch_is_dropped() {
        let mut p = MemoryPort::new(4, 64, 4);
        {
            let mut tx = TxBatch::new(&mut p);
            let a = tx.alloc().expect("free frame");
            let b = tx.alloc().expect("free frame");
            tx.buffer(a)[0] = 1;
            assert!(tx.send(a, 1));
            tx.buffer(b)[0] = 2;
            // `b` is written but never sent; the batch is dropped uncommitted.
        }
        assert_eq!(p.staged(), 0);
        assert_eq!(
            p.free_frames(),
            4,
            "the staged and the reserved frame came back"
        );
        p.flush();
        assert!(p.take_sent().is_empty());
    }

    #[test]
    fn commit_gives_back_reserved_frames_it_did_not_send() {
        let mut p = MemoryPort::new(4, 64, 4);
        let mut tx = TxBatch::new(&mut p);
        let a = tx.alloc().expect("free frame");
        let _unsent = tx.alloc().expect("free frame");
        tx.buffer(a)[0] = 7;
        assert!(tx.send(a, 1));
        assert_eq!(tx.commit(), 1);
        assert_eq!(p.take_sent(), vec![vec![7]]);
        assert_eq!(p.free_frames(), 4, "the unsent reservation is free again");
    }

    #[test]
    fn a_frame_refused_by_a_full_ring_is_returned_once() {
        let mut p = MemoryPort::new(4, 64, 1);
        {
            let mut tx = TxBatch::new(&mut p);
            let a = tx.alloc().expect("free frame");
            let b = tx.alloc().expect("free frame");
            assert!(tx.send(a, 1));
            assert!(!tx.send(b, 1), "a ring of one is full");
            // Dropped: `a` rolls back, `b` is already in the free pool.
        }
        assert_eq!(p.stats().tx_ring_full, 1);
        assert_eq!(p.free_frames(), 4, "every frame free, none twice");
        let mut seen: Vec<u64> = std::iter::from_fn(|| p.alloc_tx()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 4, "no frame is in the pool twice");
    }
}
