//! What the server does with a connection's byte streams.
//!
//! - `discard`: accept and acknowledge everything, close when the client closes (the
//!   seed's behaviour and the default).
//! - `echo` (RFC 862): send back what arrives, within the peer's window and MSS.
//! - `http`: answer each HTTP/1.x request with a fixed response; keep-alive honoured,
//!   `Connection: close` (or HTTP/1.0 without keep-alive) makes the server close; HEAD gets
//!   the head alone; malformed framing (RFC 9112 §3.2, §5.1, §6.3) gets 400 and a close.
//! - `close`: the server closes right after the handshake (FIN-WAIT and TIME-WAIT).
//!
//! Echo and http need memory: a per-core [`BufferPool`] of fixed-size buffers, allocated
//! once at start. A connection takes one when its first data arrives and returns it when
//! it ends. The receive window we offer is the free space of that buffer, so a full pool or
//! a slow reader turns into TCP flow control, never into lost bytes.

use super::{Payload, Tick};
use strum::EnumCount as _;

crate::forms::named_enum! {
    /// How a listening port treats its connections: a listener's `mode` in the config and
    /// on the command line (`--listen 80:http`), and the mode `synack lab` exercises.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[repr(u8)]
    pub enum Mode: "a listener mode" {
        /// Accept and discard data (RFC 863); close when the client closes.
        #[default]
        Discard = "discard",
        /// RFC 862 echo.
        Echo = "echo",
        /// Fixed HTTP/1.x response per request.
        Http = "http",
        /// Close right after the handshake.
        Close = "close",
    }
}

impl Mode {
    /// Whether this mode keeps data in a pool buffer.
    pub fn buffered(self) -> bool {
        matches!(self, Mode::Echo | Mode::Http)
    }
}

/// Marker for "no buffer attached".
pub const NO_BUF: u32 = u32::MAX;

/// The two halves of one connection buffer: received bytes not yet consumed (http
/// requests) and sent bytes not yet acknowledged plus bytes not yet sent.
#[derive(Debug, Clone, Copy, Default)]
struct BufMeta {
    rx_len: u32,
    tx_len: u32,
    /// Request body bytes still to skip (http `Content-Length`).
    skip: u32,
    /// Bytes at the front of the receive half already searched for the end of a request
    /// head without finding it: the next search continues there.
    scanned: u32,
    /// A complete request waits for send space (its response does not fit yet).
    blocked: bool,
    /// Tick at which the request head being received began (the header timeout).
    head_since: Option<Tick>,
    /// Ticks at which the connection began to wait (see [`Wait`]).
    waits: [Option<Tick>; Wait::COUNT],
}

/// What a connection with queued data can wait for, each bounded in time by the TCP layer.
/// The start ticks live with the buffer: only a connection holding data can wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount)]
#[repr(u8)]
pub enum Wait {
    /// The peer's window is zero while we have data (persist, RFC 9293 §3.8.6.1).
    Persist,
    /// We decided to close and our FIN is not yet acknowledged.
    Close,
}

/// A per-core pool of connection buffers, allocated once.
#[derive(Debug)]
pub struct BufferPool {
    mem: Vec<u8>,
    meta: Vec<BufMeta>,
    free: Vec<u32>,
    size: usize,
}

impl BufferPool {
    /// `count` buffers, each with `size` bytes of receive and `size` bytes of send space.
    pub fn new(count: usize, size: usize) -> Self {
        BufferPool {
            mem: vec![0; count * size * 2],
            meta: vec![BufMeta::default(); count],
            free: (0..count as u32).rev().collect(),
            size,
        }
    }

    /// Bytes of send (and receive) space per buffer.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Buffers not in use.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Take a buffer, or `None` when the pool is empty.
    #[must_use = "a buffer not attached to a connection is lost to the pool"]
    pub fn alloc(&mut self) -> Option<u32> {
        let b = self.free.pop()?;
        self.meta[b as usize] = BufMeta::default();
        Some(b)
    }

    /// Return a buffer to the pool.
    pub fn release(&mut self, b: u32) {
        if b != NO_BUF {
            self.free.push(b);
        }
    }

    fn rx_range(&self, b: u32) -> std::ops::Range<usize> {
        let start = b as usize * self.size * 2;
        start..start + self.size
    }

    fn tx_range(&self, b: u32) -> std::ops::Range<usize> {
        let start = b as usize * self.size * 2 + self.size;
        start..start + self.size
    }

    /// Bytes waiting in the send half (unacknowledged and unsent).
    pub fn tx_len(&self, b: u32) -> usize {
        if b == NO_BUF {
            0
        } else {
            self.meta[b as usize].tx_len as usize
        }
    }

    /// Free space in the send half.
    pub fn tx_free(&self, b: u32) -> usize {
        if b == NO_BUF {
            self.size
        } else {
            self.size - self.meta[b as usize].tx_len as usize
        }
    }

    /// Free space in the receive half.
    pub fn rx_free(&self, b: u32) -> usize {
        if b == NO_BUF {
            self.size
        } else {
            self.size - self.meta[b as usize].rx_len as usize
        }
    }

    /// `len` bytes of send data starting `offset` bytes after the first unacknowledged one.
    pub fn tx_slice(&self, b: u32, offset: usize, len: usize) -> &[u8] {
        let r = self.tx_range(b);
        let end = (offset + len).min(self.meta[b as usize].tx_len as usize);
        &self.mem[r.start + offset.min(end)..r.start + end]
    }

    /// The bytes of an outgoing segment's payload (empty, or a range of a send half).
    pub fn payload(&self, p: &Payload) -> &[u8] {
        match *p {
            Payload::Empty => &[],
            Payload::Buffer { buf, offset, len } => {
                self.tx_slice(buf, offset as usize, len as usize)
            }
        }
    }

    /// Append to the send half; returns bytes taken.
    #[must_use = "bytes beyond the free space are not taken"]
    pub fn tx_push(&mut self, b: u32, data: &[u8]) -> usize {
        let n = data.len().min(self.tx_free(b));
        let r = self.tx_range(b);
        let at = r.start + self.meta[b as usize].tx_len as usize;
        self.mem[at..at + n].copy_from_slice(&data[..n]);
        self.meta[b as usize].tx_len += n as u32;
        n
    }

    /// Since when the connection on buffer `b` waits for `w` (`None`: it does not).
    pub fn wait_since(&self, b: u32, w: Wait) -> Option<Tick> {
        if b == NO_BUF {
            None
        } else {
            self.meta[b as usize].waits[w as usize]
        }
    }

    /// Start (`Some(now)`, kept if already started) or end (`None`) a wait.
    pub fn set_wait(&mut self, b: u32, w: Wait, now: Option<Tick>) {
        if b == NO_BUF {
            return;
        }
        let slot = &mut self.meta[b as usize].waits[w as usize];
        *slot = now.and(slot.or(now));
    }

    /// Drop `n` acknowledged bytes from the front of the send half.
    pub fn tx_consume(&mut self, b: u32, n: usize) {
        if b == NO_BUF || n == 0 {
            return;
        }
        let r = self.tx_range(b);
        let len = self.meta[b as usize].tx_len as usize;
        let n = n.min(len);
        self.mem.copy_within(r.start + n..r.start + len, r.start);
        self.meta[b as usize].tx_len = (len - n) as u32;
    }

    fn rx_push(&mut self, b: u32, data: &[u8]) -> usize {
        let n = data.len().min(self.rx_free(b));
        let r = self.rx_range(b);
        let at = r.start + self.meta[b as usize].rx_len as usize;
        self.mem[at..at + n].copy_from_slice(&data[..n]);
        self.meta[b as usize].rx_len += n as u32;
        n
    }

    fn rx_consume(&mut self, b: u32, n: usize) {
        let r = self.rx_range(b);
        let len = self.meta[b as usize].rx_len as usize;
        let n = n.min(len);
        self.mem.copy_within(r.start + n..r.start + len, r.start);
        self.meta[b as usize].rx_len = (len - n) as u32;
        // The front moved: what was searched is no longer at the front.
        self.meta[b as usize].scanned = 0;
    }
}

/// The fixed HTTP responses, built once from the config.
#[derive(Debug, Clone)]
pub struct HttpResponses {
    keep_alive: Vec<u8>,
    close: Vec<u8>,
    /// Length of the configured body: a HEAD response is the others without it.
    body_len: usize,
    bad_request: Vec<u8>,
    timeout: Vec<u8>,
    too_large: Vec<u8>,
    not_implemented: Vec<u8>,
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn response(status: u16, content_type: &str, body: &str, close: bool) -> Vec<u8> {
    format!(
        "HTTP/1.1 {} {}\r\nServer: synack\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{}",
        status,
        reason_phrase(status),
        content_type,
        body.len(),
        if close { "close" } else { "keep-alive" },
        body
    )
    .into_bytes()
}

impl HttpResponses {
    /// Responses for `status`, `content_type` and `body`.
    pub fn new(status: u16, content_type: &str, body: &str) -> Self {
        HttpResponses {
            keep_alive: response(status, content_type, body, false),
            close: response(status, content_type, body, true),
            body_len: body.len(),
            bad_request: response(400, "text/plain", "bad request\n", true),
            timeout: response(408, "text/plain", "request header timeout\n", true),
            too_large: response(431, "text/plain", "request header too large\n", true),
            not_implemented: response(
                501,
                "text/plain",
                "chunked request bodies are not supported\n",
                true,
            ),
        }
    }

    /// Length of the longest response (a buffer must hold it).
    pub fn max_len(&self) -> usize {
        [
            &self.keep_alive,
            &self.close,
            &self.bad_request,
            &self.timeout,
            &self.too_large,
            &self.not_implemented,
        ]
        .iter()
        .map(|r| r.len())
        .max()
        .unwrap_or(0)
    }

    /// The configured response; for HEAD without its body (RFC 9110 §9.3.2: "The HEAD
    /// method is identical to GET except that the server MUST NOT send content in the
    /// response"; the header fields, Content-Length included, stay those of GET).
    fn ok(&self, close: bool, head: bool) -> &[u8] {
        let r = if close { &self.close } else { &self.keep_alive };
        if head {
            &r[..r.len() - self.body_len]
        } else {
            r
        }
    }
}

impl Default for HttpResponses {
    fn default() -> Self {
        Self::new(200, "text/plain", "synack\n")
    }
}

/// What the responder did with in-order data.
#[must_use = "the bytes taken are what may be acknowledged"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Taken {
    /// Bytes accepted (acknowledged); the rest is left for the peer to retransmit.
    pub bytes: usize,
    /// The responder wants to close once everything queued is sent.
    pub close: bool,
    /// HTTP responses queued.
    pub responses: u32,
    /// Bytes received after a closing request, dropped unread (RFC 9112 §9.6).
    pub discarded: u32,
}

/// What one run of the HTTP responder queued.
#[must_use = "a closing response must close the connection"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Served {
    /// A response that closes the connection was queued.
    pub close: bool,
    /// Responses queued.
    pub responses: u32,
    /// Bytes received after a closing request, dropped unread (RFC 9112 §9.6).
    pub discarded: u32,
}

/// Hand in-order data, received at tick `now`, to the responder. `buf` must be attached
/// for buffered modes.
pub fn on_data(
    mode: Mode,
    pool: &mut BufferPool,
    http: &HttpResponses,
    buf: u32,
    data: &[u8],
    now: Tick,
) -> Taken {
    match mode {
        Mode::Discard | Mode::Close => Taken {
            bytes: data.len(),
            ..Taken::default()
        },
        Mode::Echo => Taken {
            bytes: pool.tx_push(buf, data),
            ..Taken::default()
        },
        Mode::Http => {
            let bytes = pool.rx_push(buf, data);
            let served = serve_http(pool, http, buf, now);
            Taken {
                bytes,
                close: served.close,
                responses: served.responses,
                discarded: served.discarded,
            }
        }
    }
}

/// Let the responder make progress after the peer acknowledged data (send space freed).
pub fn on_send_space(
    mode: Mode,
    pool: &mut BufferPool,
    http: &HttpResponses,
    buf: u32,
    now: Tick,
) -> Served {
    match mode {
        Mode::Http if buf != NO_BUF => serve_http(pool, http, buf, now),
        _ => Served::default(),
    }
}

/// Whether the responder still has something to answer that waits only for send space: a
/// complete request whose response does not fit yet. Our FIN must wait for it (RFC 9293
/// §3.10.4: the FIN follows "all preceding SENDs"; RFC 9112 §9.3.2: a server answers
/// pipelined requests in the order received).
pub fn blocked(mode: Mode, pool: &BufferPool, buf: u32) -> bool {
    mode == Mode::Http && buf != NO_BUF && pool.meta[buf as usize].blocked
}

/// Since when an incomplete request head has been arriving (`None` when none is): the
/// clock of the request-header timeout. It starts with the first byte after the previous
/// request (leading empty lines included, as nginx counts them) and stops when a head is
/// complete, when the request waits only for send space, or while a body is skipped.
pub fn head_since(mode: Mode, pool: &BufferPool, buf: u32) -> Option<Tick> {
    if mode == Mode::Http && buf != NO_BUF {
        pool.meta[buf as usize].head_since
    } else {
        None
    }
}

/// The request-header timeout expired: queue a 408 and its close (RFC 9110 §15.5.9: "the
/// server did not receive a complete request message within the time that it was
/// prepared to wait") when it fits, and drop the partial head. Returns whether it was
/// queued; the caller closes either way.
pub fn time_out(pool: &mut BufferPool, http: &HttpResponses, buf: u32) -> bool {
    if buf == NO_BUF {
        return false;
    }
    let len = pool.meta[buf as usize].rx_len as usize;
    pool.rx_consume(buf, len);
    pool.meta[buf as usize].head_since = None;
    if http.timeout.len() <= pool.tx_free(buf) {
        let pushed = pool.tx_push(buf, &http.timeout);
        debug_assert_eq!(pushed, http.timeout.len(), "checked to fit");
        true
    } else {
        false
    }
}

/// Answer every complete request in the receive half for which the send half has room.
fn serve_http(pool: &mut BufferPool, http: &HttpResponses, buf: u32, now: Tick) -> Served {
    let mut served = Served::default();
    let b = buf as usize;
    pool.meta[b].blocked = false;
    loop {
        // Skip the body of the previous request.
        let meta = pool.meta[b];
        if meta.skip > 0 {
            let n = meta.skip.min(meta.rx_len);
            pool.rx_consume(buf, n as usize);
            pool.meta[b].skip -= n;
            if pool.meta[b].skip > 0 {
                return served;
            }
        }
        // RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line
        // SHOULD ignore at least one empty line (CRLF) received prior to the request-line."
        let r = pool.rx_range(buf);
        let rx = &pool.mem[r.start..r.start + pool.meta[b].rx_len as usize];
        let empty = leading_empty_lines(rx);
        if (empty > 0 || !rx.is_empty()) && pool.meta[b].head_since.is_none() {
            pool.meta[b].head_since = Some(now);
        }
        if empty > 0 {
            pool.rx_consume(buf, empty);
        }
        let rx_len = pool.meta[b].rx_len as usize;
        let rx = &pool.mem[r.start..r.start + rx_len];
        let Some(end) = find_header_end(rx, pool.meta[b].scanned as usize) else {
            pool.meta[b].scanned = rx_len as u32;
            if rx_len == pool.size {
                // A header block larger than the buffer: answer 431 and close.
                if http.too_large.len() > pool.tx_free(buf) {
                    pool.meta[b].blocked = true;
                    return served;
                }
                served.discarded = queue(pool, buf, &http.too_large, true, rx_len, 0);
                served.close = true;
                served.responses += 1;
            }
            return served;
        };
        let (resp, close, body) = match parse_head(&rx[..end]) {
            Head::Bad => (&http.bad_request[..], true, 0),
            Head::Chunked => (&http.not_implemented[..], true, 0),
            Head::Ok { close, body, head } => (http.ok(close, head), close, body),
        };
        if resp.len() > pool.tx_free(buf) {
            // Wait for the peer to acknowledge what we sent; the client is not late.
            pool.meta[b].blocked = true;
            pool.meta[b].head_since = None;
            return served;
        }
        served.discarded = queue(pool, buf, resp, close, end, body);
        served.responses += 1;
        if close {
            served.close = true;
            return served;
        }
    }
}

/// Queue `resp` (the caller checked it fits), consume the request, skip its body.
/// Returns the bytes dropped after a closing request.
fn queue(
    pool: &mut BufferPool,
    buf: u32,
    resp: &[u8],
    close: bool,
    consumed: usize,
    body: u32,
) -> u32 {
    let pushed = pool.tx_push(buf, resp);
    debug_assert_eq!(pushed, resp.len(), "the caller checked it fits");
    pool.rx_consume(buf, consumed);
    pool.meta[buf as usize].skip = body;
    pool.meta[buf as usize].head_since = None;
    if close {
        // RFC 9112 §9.6: "A server that sends a "close" connection option MUST initiate
        // closure of the connection ... after it sends the response containing close ...
        // [and] MUST NOT process any further requests received on that connection."
        let len = pool.meta[buf as usize].rx_len;
        pool.rx_consume(buf, len as usize);
        return len;
    }
    0
}

/// Bytes of empty lines (CRLF or a bare LF, RFC 9112 §2.2) at the front of `b`.
fn leading_empty_lines(b: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match b.get(i..) {
            Some([b'\r', b'\n', ..]) => i += 2,
            Some([b'\n', ..]) => i += 1,
            _ => return i,
        }
    }
}

/// The end of a request head (RFC 9112 §2.1: the empty line after the field lines),
/// searching on from byte `scanned`, before which a previous search found none. A line
/// ending may have been cut after its first bytes, so the search backs up three bytes.
fn find_header_end(b: &[u8], scanned: usize) -> Option<usize> {
    let from = scanned.saturating_sub(3).min(b.len());
    b[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| from + p + 4)
}

enum Head {
    Ok { close: bool, body: u32, head: bool },
    Chunked,
    Bad,
}

/// RFC 9110 §5.6.2 `tchar`: what a field name (a token) may contain.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Parse just what the responder needs from a request head (RFC 9112 §3, §5, §6.3, §9.3).
fn parse_head(head: &[u8]) -> Head {
    let mut lines = head
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(request_line) = lines.next() else {
        return Head::Bad;
    };
    let mut parts = request_line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let (Some(method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Bad;
    };
    // RFC 9112 §9.3: HTTP/1.1 defaults to persistent, HTTP/1.0 to close.
    let (mut close, http11) = match version {
        b"HTTP/1.1" => (false, true),
        b"HTTP/1.0" => (true, false),
        _ => return Head::Bad,
    };
    let mut body: Option<u32> = None;
    let mut hosts = 0u32;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return Head::Bad;
        };
        let name = &line[..colon];
        // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon ... A
        // server MUST reject, with a response status code of 400 (Bad Request), any
        // received request message that contains whitespace between a header field name
        // and colon." A name must be a token, which also rules out obs-fold (§5.2).
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Head::Bad;
        }
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&c| c == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9112 §6.3 item 5: an invalid Content-Length is "an unrecoverable error
            // ... the server MUST respond with a 400 (Bad Request) status code and then
            // close the connection". RFC 9110 §8.6: a list of identical values may be
            // taken as one; differing values (in one line or several) are invalid.
            for v in value.split(|&c| c == b',').map(trim) {
                match (parse_digits(v), body) {
                    (Some(n), None) => body = Some(n),
                    (Some(n), Some(m)) if n == m => {}
                    _ => return Head::Bad,
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Head::Chunked;
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        }
    }
    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    // HTTP/1.1 request message that lacks a Host header field and to any request message
    // that contains more than one Host header field line".
    if hosts > 1 || (http11 && hosts == 0) {
        return Head::Bad;
    }
    Head::Ok {
        close,
        body: body.unwrap_or(0),
        head: method == b"HEAD",
    }
}

/// RFC 9110 §8.6 `Content-Length = 1*DIGIT` as a u32 (no sign, no blanks).
fn parse_digits(v: &[u8]) -> Option<u32> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(pool: &BufferPool, b: u32) -> String {
        String::from_utf8(pool.tx_slice(b, 0, pool.tx_len(b)).to_vec()).unwrap()
    }

    #[test]
    fn echo_copies_up_to_free_space() {
        let mut pool = BufferPool::new(1, 8);
        let b = pool.alloc().unwrap();
        let h = HttpResponses::default();
        let t = on_data(Mode::Echo, &mut pool, &h, b, b"hello world", Tick(0));
        assert_eq!(t.bytes, 8);
        assert_eq!(tx(&pool, b), "hello wo");
        pool.tx_consume(b, 6);
        assert_eq!(tx(&pool, b), "wo");
        assert_eq!(pool.tx_free(b), 6);
    }

    #[test]
    fn http_keep_alive_and_pipelining() {
        let mut pool = BufferPool::new(1, 4096);
        let b = pool.alloc().unwrap();
        let h = HttpResponses::new(200, "text/plain", "hi\n");
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
        let t = on_data(Mode::Http, &mut pool, &h, b, req, Tick(0));
        assert_eq!(
            t,
            Taken {
                bytes: req.len(),
                close: false,
                responses: 2,
                discarded: 0,
            }
        );
        let out = tx(&pool, b);
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2);
        assert!(out.contains("Content-Length: 3\r\n"));
        assert!(out.contains("Connection: keep-alive"));
        assert_eq!(pool.rx_free(b), 4096);
    }

    #[test]
    fn http_request_split_across_segments() {
        let mut pool = BufferPool::new(1, 4096);
        let b = pool.alloc().unwrap();
        let h = HttpResponses::default();
        assert!(
            !on_data(
                Mode::Http,
                &mut pool,
                &h,
                b,
                b"GET / HTTP/1.1\r\nHo",
                Tick(0)
            )
            .close
        );
        assert_eq!(pool.tx_len(b), 0);
        let t = on_data(
            Mode::Http,
            &mut pool,
            &h,
            b,
            b"st: x\r\nConnection: close\r\n\r\n",
            Tick(0),
        );
        assert!(t.close);
        assert!(tx(&pool, b).contains("Connection: close"));
    }

    #[test]
    fn http_1_0_closes_unless_keep_alive() {
        let h = HttpResponses::default();
        let mut pool = BufferPool::new(2, 4096);
        let b = pool.alloc().unwrap();
        assert!(
            on_data(
                Mode::Http,
                &mut pool,
                &h,
                b,
                b"GET / HTTP/1.0\r\n\r\n",
                Tick(0)
            )
            .close
        );
        let b2 = pool.alloc().unwrap();
        assert!(
            !on_data(
                Mode::Http,
                &mut pool,
                &h,
                b2,
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                Tick(0)
            )
            .close
        );
    }

    #[test]
    fn http_skips_request_body() {
        let h = HttpResponses::default();
        let mut pool = BufferPool::new(1, 4096);
        let b = pool.alloc().unwrap();
        let t = on_data(
            Mode::Http,
            &mut pool,
            &h,
            b,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
            Tick(0),
        );
        assert!(!t.close);
        assert_eq!(pool.tx_len(b), h.keep_alive.len());
        let rest = b"cdeGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            on_data(Mode::Http, &mut pool, &h, b, rest, Tick(0)).bytes,
            rest.len()
        );
        assert_eq!(pool.tx_len(b), 2 * h.keep_alive.len());
    }

    #[test]
    fn http_bad_and_oversized_requests_close() {
        let h = HttpResponses::default();
        let mut pool = BufferPool::new(1, 512);
        let b = pool.alloc().unwrap();
        assert!(on_data(Mode::Http, &mut pool, &h, b, b"garbage\r\n\r\n", Tick(0)).close);
        assert!(tx(&pool, b).starts_with("HTTP/1.1 400"));
        let mut pool2 = BufferPool::new(1, 512);
        let b3 = pool2.alloc().unwrap();
        let t = on_data(Mode::Http, &mut pool2, &h, b3, &[b'a'; 600], Tick(0));
        assert_eq!(t.bytes, 512);
        assert!(t.close);
        assert!(tx(&pool2, b3).starts_with("HTTP/1.1 431"));
    }

    /// Two pipelined GETs, all taken, into a buffer whose send half holds one response (and
    /// 10 bytes): the second waits for send space.
    fn two_requests_room_for_one() -> (HttpResponses, BufferPool, u32) {
        let h = HttpResponses::default();
        let mut pool = BufferPool::new(1, h.keep_alive.len() + 10);
        let b = pool.alloc().unwrap();
        let two = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            on_data(Mode::Http, &mut pool, &h, b, two, Tick(0)).bytes,
            two.len()
        );
        (h, pool, b)
    }

    #[test]
    fn http_waits_for_send_space() {
        let (h, mut pool, b) = two_requests_room_for_one();
        let len = h.keep_alive.len();
        assert_eq!(pool.tx_len(b), len);
        pool.tx_consume(b, len);
        let served = on_send_space(Mode::Http, &mut pool, &h, b, Tick(0));
        assert_eq!(
            served,
            Served {
                close: false,
                responses: 1,
                discarded: 0,
            }
        );
        assert_eq!(pool.tx_len(b), len);
    }

    /// One request on a fresh buffer: (taken, what was queued).
    fn ask(req: &[u8]) -> (Taken, String) {
        let h = HttpResponses::default();
        let mut pool = BufferPool::new(1, 4096);
        let b = pool.alloc().unwrap();
        let t = on_data(Mode::Http, &mut pool, &h, b, req, Tick(0));
        (t, tx(&pool, b))
    }

    /// Each of `reqs`, on a fresh buffer, gets 400 (Bad Request) and the connection closes.
    fn assert_400_and_close(reqs: &[&[u8]]) {
        for req in reqs {
            let (t, out) = ask(req);
            assert!(t.close, "{}", String::from_utf8_lossy(req));
            assert!(out.starts_with("HTTP/1.1 400 Bad Request"), "{out}");
        }
    }

    #[test]
    fn rfc9110_9_3_2_head_gets_the_head_without_body() {
        let h = HttpResponses::default();
        let (t, out) = ask(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(t.responses, 2);
        let head_len = h.keep_alive.len() - h.body_len;
        assert_eq!(
            &out[..head_len],
            std::str::from_utf8(&h.keep_alive[..head_len]).unwrap()
        );
        assert!(out[..head_len].ends_with("\r\n\r\n"));
        assert!(
            out[..head_len].contains("Content-Length: 7\r\n"),
            "GET's fields"
        );
        // The next response follows the head at once: a keep-alive client stays in step.
        assert!(out[head_len..].starts_with("HTTP/1.1 200 OK"));
        assert_eq!(out.len(), head_len + h.keep_alive.len());
    }

    #[test]
    fn rfc9112_2_2_leading_empty_lines_ignored() {
        let (t, out) = ask(b"\r\n\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((t.responses, t.close), (1, false));
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        // Between pipelined requests too (a CRLF after a body, RFC 9112 §2.2).
        let (t, out) = ask(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(t.responses, 2, "{out}");
        assert!(!out.contains("400"));
    }

    #[test]
    fn rfc9112_6_3_conflicting_content_length_is_400_and_close() {
        assert_400_and_close(&[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
        ]);
        // RFC 9110 §8.6: identical values may be taken as one.
        let (t, out) = ask(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab");
        assert!(!t.close && out.starts_with("HTTP/1.1 200"), "{out}");
    }

    #[test]
    fn rfc9112_5_1_whitespace_before_colon_is_400_and_close() {
        assert_400_and_close(&[
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nAccept\t: */*\r\n\r\n",
            // obs-fold (RFC 9112 §5.2): a line starting with whitespace.
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n",
        ]);
    }

    #[test]
    fn rfc9112_3_2_missing_or_repeated_host_is_400_and_close() {
        assert_400_and_close(&[
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
        ]);
        // HTTP/1.0 needs none.
        let (_, out) = ask(b"GET / HTTP/1.0\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }

    /// RFC 9112 §2.1: the header-end search goes on where the last one stopped, so a head
    /// dribbled in one byte at a time costs O(n), not O(n²); a CRLFCRLF cut at any point
    /// is still found.
    #[test]
    fn rfc9112_2_1_header_end_search_resumes() {
        let h = HttpResponses::default();
        let req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaa\r\n\r\n";
        let mut pool = BufferPool::new(1, 4096);
        let b = pool.alloc().unwrap();
        for (i, byte) in req.iter().enumerate() {
            let t = on_data(Mode::Http, &mut pool, &h, b, &[*byte], Tick(0));
            assert_eq!(t.responses, u32::from(i == req.len() - 1), "byte {i}");
            if i < req.len() - 1 {
                assert_eq!(pool.meta[b as usize].scanned as usize, i + 1);
            }
        }
        assert_eq!(find_header_end(b"ab\r\n\r\n", 4), Some(6));
        assert_eq!(find_header_end(b"ab\r\n\r", 5), None);
    }

    #[test]
    fn header_clock_runs_only_while_a_head_is_incomplete() {
        let h = HttpResponses::default();
        let mut pool = BufferPool::new(1, 4096);
        let b = pool.alloc().unwrap();
        assert_eq!(head_since(Mode::Http, &pool, b), None);
        assert_eq!(
            on_data(Mode::Http, &mut pool, &h, b, b"\r\n", Tick(10)).bytes,
            2
        );
        assert_eq!(
            head_since(Mode::Http, &pool, b),
            Some(Tick(10)),
            "empty lines count"
        );
        let line = b"GET / HTTP/1.1\r\n";
        assert_eq!(
            on_data(Mode::Http, &mut pool, &h, b, line, Tick(20)).bytes,
            line.len()
        );
        assert_eq!(head_since(Mode::Http, &pool, b), Some(Tick(10)));
        let next = b"Host: x\r\n\r\nGET";
        assert_eq!(
            on_data(Mode::Http, &mut pool, &h, b, next, Tick(30)).bytes,
            next.len()
        );
        assert_eq!(
            head_since(Mode::Http, &pool, b),
            Some(Tick(30)),
            "the next head began"
        );
        assert!(time_out(&mut pool, &h, b));
        assert!(tx(&pool, b).ends_with(std::str::from_utf8(&h.timeout).unwrap()));
        assert_eq!(head_since(Mode::Http, &pool, b), None);
        assert_eq!(pool.rx_free(b), 4096);
    }

    #[test]
    fn blocked_until_send_space() {
        let (h, mut pool, b) = two_requests_room_for_one();
        let len = h.keep_alive.len();
        assert!(blocked(Mode::Http, &pool, b));
        assert_eq!(
            head_since(Mode::Http, &pool, b),
            None,
            "not the client's delay"
        );
        pool.tx_consume(b, len);
        assert_eq!(
            on_send_space(Mode::Http, &mut pool, &h, b, Tick(0)).responses,
            1
        );
        assert!(!blocked(Mode::Http, &pool, b));
    }

    #[test]
    fn waits_start_once_and_end() {
        let mut pool = BufferPool::new(1, 512);
        let b = pool.alloc().unwrap();
        pool.set_wait(b, Wait::Persist, Some(Tick(5)));
        pool.set_wait(b, Wait::Persist, Some(Tick(9)));
        assert_eq!(pool.wait_since(b, Wait::Persist), Some(Tick(5)));
        assert_eq!(pool.wait_since(b, Wait::Close), None);
        pool.set_wait(b, Wait::Persist, None);
        assert_eq!(pool.wait_since(b, Wait::Persist), None);
        pool.release(b);
        let b = pool.alloc().unwrap();
        assert_eq!(pool.wait_since(b, Wait::Close), None);
    }

    #[test]
    fn pool_exhaustion_and_release() {
        let mut pool = BufferPool::new(1, 16);
        let b = pool.alloc().unwrap();
        assert!(pool.alloc().is_none());
        pool.release(b);
        assert_eq!(pool.available(), 1);
    }
}
