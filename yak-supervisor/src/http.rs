//! The metrics endpoint: a small blocking HTTP/1.x server that answers
//! `GET /metrics` (and `HEAD`) with the text a render function returns.
//!
//! Owns: the listening socket's accept thread and one short-lived thread per
//! connection (at most `METRICS_CONNECTIONS_MAX`; more are closed at once),
//! each with a deadline on reading the request and writing the answer, and a
//! cap on the request's size. Other paths get 404, other methods 405,
//! garbage 400: a bad or slow client costs one thread for a bounded time and
//! nothing else.
//! Never: forks, touches the children or the supervisor's state (the render
//! function reads what it needs); keeps a connection open after one answer.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use yak_protocol::limits::{
    METRICS_CLIENT_TIMEOUT_MS, METRICS_CONNECTIONS_MAX, METRICS_REQUEST_BYTES_MAX,
};

use crate::metrics::CONTENT_TYPE;

/// Produces the body of `GET /metrics`.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// What a request head asks for, as far as this server cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (`head_only` for `HEAD`).
    Metrics { head_only: bool },
    /// Any other path.
    NotFound,
    /// A method other than GET or HEAD.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line.
    BadRequest,
    /// The head did not end within `METRICS_REQUEST_BYTES_MAX`.
    TooLarge,
}

/// Starts the accept thread on `listener`.
pub fn serve(listener: TcpListener, render: Render) -> io::Result<()> {
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || accept_loop(&listener, &render))
        .map(|_| ())
}

fn accept_loop(listener: &TcpListener, render: &Render) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut backoff_ms = 1;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => {
                backoff_ms = 1;
                stream
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                std::thread::sleep(Duration::from_millis(backoff_ms));
                backoff_ms =
                    (backoff_ms * 2).min(yak_protocol::limits::METRICS_ACCEPT_BACKOFF_MS_MAX);
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= METRICS_CONNECTIONS_MAX {
            tracing::warn!(
                max = METRICS_CONNECTIONS_MAX,
                "metrics endpoint: too many connections; closing a new one"
            );
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (render, done) = (Arc::clone(render), Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("metrics-conn".into())
            .spawn(move || {
                if let Err(e) = handle(stream, &render) {
                    tracing::debug!(error = %e, "metrics endpoint: connection ended");
                }
                done.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "metrics endpoint: cannot start a connection thread");
        }
    }
}

/// Reads one request head, answers it and closes the connection.
fn handle(mut stream: TcpStream, render: &Render) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(METRICS_CLIENT_TIMEOUT_MS);
    let route = match read_head(&mut stream, deadline)? {
        Some(head) => route(&head),
        None => Route::TooLarge,
    };
    let (status, extra, body) = match route {
        Route::Metrics { head_only } => {
            let body = render();
            let length = body.len();
            (
                "200 OK",
                format!("Content-Type: {CONTENT_TYPE}\r\nContent-Length: {length}\r\n"),
                (!head_only).then_some(body),
            )
        }
        Route::NotFound => (
            "404 Not Found",
            String::new(),
            Some("metrics are at /metrics\n".to_string()),
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n".into(),
            Some(String::new()),
        ),
        Route::BadRequest => ("400 Bad Request", String::new(), Some(String::new())),
        Route::TooLarge => (
            "431 Request Header Fields Too Large",
            String::new(),
            Some(String::new()),
        ),
    };
    let mut answer = format!("HTTP/1.1 {status}\r\nConnection: close\r\n{extra}");
    if let Some(body) = &body {
        if !matches!(route, Route::Metrics { .. }) {
            answer.push_str(&format!(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
    }
    answer.push_str("\r\n");
    answer.push_str(body.as_deref().unwrap_or(""));
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream.set_write_timeout(Some(left))?;
    stream.write_all(answer.as_bytes())?;
    stream.flush()?;
    stream.shutdown(Shutdown::Both)
}

/// Reads until the blank line that ends a request head, at most
/// `METRICS_REQUEST_BYTES_MAX` bytes and until `deadline`. `None`: too large.
/// A client that closes early or stays silent past the deadline is an error.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not complete in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed before its request ended",
            ));
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > METRICS_REQUEST_BYTES_MAX {
            return Ok(None);
        }
    }
}

/// Where a request head goes. Only the request line is read.
pub fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::BadRequest;
    };
    let parts: Vec<&str> = line.trim_end_matches('\r').split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') || method.is_empty() {
        return Route::BadRequest;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    let path = target.split('?').next().unwrap_or(target);
    if path == "/metrics" {
        Route::Metrics { head_only }
    } else {
        Route::NotFound
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve(listener, Arc::new(|| "yak_up 1\n".to_string())).unwrap();
        addr
    }

    fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn given_request_lines_when_routing_should_pick_the_answer() {
        let cases: [(&[u8], Route); 9] = [
            (
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                Route::Metrics { head_only: false },
            ),
            (
                b"GET /metrics?name=yak HTTP/1.0\r\n\r\n",
                Route::Metrics { head_only: false },
            ),
            (
                b"HEAD /metrics HTTP/1.1\r\n\r\n",
                Route::Metrics { head_only: true },
            ),
            (b"GET / HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"POST /metrics HTTP/1.1\r\n\r\n", Route::MethodNotAllowed),
            (b"GET /metrics\r\n\r\n", Route::BadRequest),
            (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
                Route::BadRequest,
            ),
            (b"GET metrics HTTP/1.1\r\n\r\n", Route::BadRequest),
        ];
        for (head, want) in cases {
            assert_eq!(route(head), want, "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn given_get_metrics_when_served_should_answer_200_with_the_rendered_text() {
        let addr = server();
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("Content-Type: text/plain; version=0.0.4"),
            "{answer}"
        );
        assert!(answer.contains("Content-Length: 9\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nyak_up 1\n"), "{answer}");
        let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
    }

    #[test]
    fn given_bad_requests_when_served_should_answer_4xx_and_keep_serving() {
        let addr = server();
        assert!(exchange(addr, b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let post = exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n");
        assert!(
            post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"),
            "{post}"
        );
        assert!(exchange(addr, b"garbage\x00\xff\n\n").starts_with("HTTP/1.1 400"));
        // One byte past the cap: all of it is read, so the close is clean.
        let huge = vec![b'a'; METRICS_REQUEST_BYTES_MAX + 1];
        assert!(exchange(addr, &huge).starts_with("HTTP/1.1 431"));
        assert!(exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn given_silent_clients_when_another_scrapes_should_answer_it_at_once() {
        let addr = server();
        let silent: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut half = TcpStream::connect(addr).unwrap();
        half.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        let began = Instant::now();
        assert!(exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        assert!(
            began.elapsed() < Duration::from_millis(METRICS_CLIENT_TIMEOUT_MS / 2),
            "{:?}",
            began.elapsed()
        );
        // The silent ones are closed once their deadline passes.
        let mut closed = TcpStream::connect(addr).unwrap();
        closed
            .set_read_timeout(Some(Duration::from_millis(METRICS_CLIENT_TIMEOUT_MS * 3)))
            .unwrap();
        let mut rest = Vec::new();
        assert_eq!(
            closed.read_to_end(&mut rest).unwrap(),
            0,
            "a silent client gets nothing and is closed"
        );
        drop(silent);
    }
}
