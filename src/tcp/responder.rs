//! What the server does with a connection's byte streams.
//!
//! - `discard`: accept and acknowledge everything, close when the client closes (the
//!   seed's behaviour and the default).
//! - `echo` (RFC 862): send back what arrives, within the peer's window and MSS.
//! - `http`: answer each HTTP/1.x request with a fixed response; keep-alive honoured,
//!   `Connection: close` (or HTTP/1.0 without keep-alive) makes the server close.
//! - `close`: the server closes right after the handshake (FIN-WAIT and TIME-WAIT).
//!
//! Echo and http need memory: a per-core [`BufferPool`] of fixed-size buffers, allocated
//! once at start. A connection takes one when its first data arrives and returns it when
//! it ends. The receive window we offer is the free space of that buffer, so a full pool or
//! a slow reader turns into TCP flow control, never into lost bytes.

/// How a listening port treats its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Mode {
    /// Accept and discard data; close when the client closes.
    #[default]
    Discard,
    /// RFC 862 echo.
    Echo,
    /// Fixed HTTP/1.x response per request.
    Http,
    /// Close right after the handshake.
    Close,
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

    /// Append to the send half; returns bytes taken.
    pub fn tx_push(&mut self, b: u32, data: &[u8]) -> usize {
        let n = data.len().min(self.tx_free(b));
        let r = self.tx_range(b);
        let at = r.start + self.meta[b as usize].tx_len as usize;
        self.mem[at..at + n].copy_from_slice(&data[..n]);
        self.meta[b as usize].tx_len += n as u32;
        n
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
    }
}

/// The fixed HTTP responses, built once from the config.
#[derive(Debug, Clone)]
pub struct HttpResponses {
    keep_alive: Vec<u8>,
    close: Vec<u8>,
    bad_request: Vec<u8>,
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
            bad_request: response(400, "text/plain", "bad request\n", true),
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
            &self.too_large,
            &self.not_implemented,
        ]
        .iter()
        .map(|r| r.len())
        .max()
        .unwrap_or(0)
    }
}

impl Default for HttpResponses {
    fn default() -> Self {
        Self::new(200, "text/plain", "synack\n")
    }
}

/// What the responder did with in-order data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Taken {
    /// Bytes accepted (acknowledged); the rest is left for the peer to retransmit.
    pub bytes: usize,
    /// The responder wants to close once everything queued is sent.
    pub close: bool,
    /// HTTP responses queued.
    pub responses: u32,
}

/// What one run of the HTTP responder queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Served {
    /// A response that closes the connection was queued.
    pub close: bool,
    /// Responses queued.
    pub responses: u32,
}

/// Hand in-order data to the responder. `buf` must be attached for buffered modes.
pub fn on_data(
    mode: Mode,
    pool: &mut BufferPool,
    http: &HttpResponses,
    buf: u32,
    data: &[u8],
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
            let served = serve_http(pool, http, buf);
            Taken {
                bytes,
                close: served.close,
                responses: served.responses,
            }
        }
    }
}

/// Let the responder make progress after the peer acknowledged data (send space freed).
pub fn on_send_space(mode: Mode, pool: &mut BufferPool, http: &HttpResponses, buf: u32) -> Served {
    match mode {
        Mode::Http if buf != NO_BUF => serve_http(pool, http, buf),
        _ => Served::default(),
    }
}

/// Answer every complete request in the receive half for which the send half has room.
fn serve_http(pool: &mut BufferPool, http: &HttpResponses, buf: u32) -> Served {
    let mut served = Served::default();
    loop {
        // Skip the body of the previous request.
        let meta = pool.meta[buf as usize];
        if meta.skip > 0 {
            let n = meta.skip.min(meta.rx_len);
            pool.rx_consume(buf, n as usize);
            pool.meta[buf as usize].skip -= n;
            if pool.meta[buf as usize].skip > 0 {
                return served;
            }
        }
        let r = pool.rx_range(buf);
        let rx_len = pool.meta[buf as usize].rx_len as usize;
        let rx = &pool.mem[r.start..r.start + rx_len];
        let Some(end) = find_header_end(rx) else {
            if rx_len == pool.size && http.too_large.len() <= pool.tx_free(buf) {
                // A header block larger than the buffer: answer 431 and close.
                queue(pool, buf, &http.too_large, true, rx_len, 0);
                served.close = true;
                served.responses += 1;
            }
            return served;
        };
        let head = parse_head(&rx[..end]);
        let (resp, close, body) = match head {
            Head::Bad => (&http.bad_request, true, 0),
            Head::Chunked => (&http.not_implemented, true, 0),
            Head::Ok { close: true, body } => (&http.close, true, body),
            Head::Ok { close: false, body } => (&http.keep_alive, false, body),
        };
        if resp.len() > pool.tx_free(buf) {
            return served; // wait for the peer to acknowledge what we sent
        }
        queue(pool, buf, resp, close, end, body);
        served.responses += 1;
        if close {
            served.close = true;
            return served;
        }
    }
}

/// Queue `resp` (the caller checked it fits), consume the request, skip its body.
fn queue(pool: &mut BufferPool, buf: u32, resp: &[u8], close: bool, consumed: usize, body: u32) {
    pool.tx_push(buf, resp);
    pool.rx_consume(buf, consumed);
    pool.meta[buf as usize].skip = body;
    if close {
        // Nothing after a closing response is read.
        let len = pool.meta[buf as usize].rx_len as usize;
        pool.rx_consume(buf, len);
    }
}

fn find_header_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

enum Head {
    Ok { close: bool, body: u32 },
    Chunked,
    Bad,
}

/// Parse just what the responder needs from a request head (RFC 9112 §3, §9.3, §6.3).
fn parse_head(head: &[u8]) -> Head {
    let mut lines = head
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(request_line) = lines.next() else {
        return Head::Bad;
    };
    let mut parts = request_line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let (Some(_method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Bad;
    };
    // RFC 9112 §9.3: HTTP/1.1 defaults to persistent, HTTP/1.0 to close.
    let mut close = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return Head::Bad,
    };
    let mut body = 0u32;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return Head::Bad;
        };
        let name = &line[..colon];
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
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
            {
                Some(n) => body = n,
                None => return Head::Bad,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Head::Chunked;
        }
    }
    Head::Ok { close, body }
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
        let t = on_data(Mode::Echo, &mut pool, &h, b, b"hello world");
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
        let t = on_data(Mode::Http, &mut pool, &h, b, req);
        assert_eq!(
            t,
            Taken {
                bytes: req.len(),
                close: false,
                responses: 2
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
        assert!(!on_data(Mode::Http, &mut pool, &h, b, b"GET / HTTP/1.1\r\nHo").close);
        assert_eq!(pool.tx_len(b), 0);
        let t = on_data(
            Mode::Http,
            &mut pool,
            &h,
            b,
            b"st: x\r\nConnection: close\r\n\r\n",
        );
        assert!(t.close);
        assert!(tx(&pool, b).contains("Connection: close"));
    }

    #[test]
    fn http_1_0_closes_unless_keep_alive() {
        let h = HttpResponses::default();
        let mut pool = BufferPool::new(2, 4096);
        let b = pool.alloc().unwrap();
        assert!(on_data(Mode::Http, &mut pool, &h, b, b"GET / HTTP/1.0\r\n\r\n").close);
        let b2 = pool.alloc().unwrap();
        assert!(
            !on_data(
                Mode::Http,
                &mut pool,
                &h,
                b2,
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
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
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
        );
        assert!(!t.close);
        assert_eq!(pool.tx_len(b), h.keep_alive.len());
        on_data(Mode::Http, &mut pool, &h, b, b"cdeGET / HTTP/1.1\r\n\r\n");
        assert_eq!(pool.tx_len(b), 2 * h.keep_alive.len());
    }

    #[test]
    fn http_bad_and_oversized_requests_close() {
        let h = HttpResponses::default();
        let mut pool = BufferPool::new(1, 512);
        let b = pool.alloc().unwrap();
        assert!(on_data(Mode::Http, &mut pool, &h, b, b"garbage\r\n\r\n").close);
        assert!(tx(&pool, b).starts_with("HTTP/1.1 400"));
        let mut pool2 = BufferPool::new(1, 512);
        let b3 = pool2.alloc().unwrap();
        let t = on_data(Mode::Http, &mut pool2, &h, b3, &[b'a'; 600]);
        assert_eq!(t.bytes, 512);
        assert!(t.close);
        assert!(tx(&pool2, b3).starts_with("HTTP/1.1 431"));
    }

    #[test]
    fn http_waits_for_send_space() {
        let h = HttpResponses::default();
        let len = h.keep_alive.len();
        let mut pool = BufferPool::new(1, len + 10);
        let b = pool.alloc().unwrap();
        on_data(
            Mode::Http,
            &mut pool,
            &h,
            b,
            b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        );
        assert_eq!(pool.tx_len(b), len);
        pool.tx_consume(b, len);
        let served = on_send_space(Mode::Http, &mut pool, &h, b);
        assert_eq!(
            served,
            Served {
                close: false,
                responses: 1
            }
        );
        assert_eq!(pool.tx_len(b), len);
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
