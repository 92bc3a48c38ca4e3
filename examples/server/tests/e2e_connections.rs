//! Slow and idle connections against the real binary (S13): a bounded
//! slowloris run, oversized request heads, the connection cap, idle keep-alive,
//! and a shutdown that a stalled client cannot hold open. Only 127.0.0.1; every
//! loop is bounded in count and time; no figure is asserted as a wall-clock time
//! except the documented shutdown grace, with a wide margin.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{Server, raw_request};

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
}

/// Whether the server has closed `stream`: it reads to the end (whatever the
/// server wrote first) or is reset, rather than waiting.
fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

fn healthz(addr: SocketAddr) -> u16 {
    raw_request(addr, "GET", "/healthz", None, None, &[]).status
}

#[test]
fn s13_slowloris_and_fat_heads_leave_healthz_answering_and_memory_bounded() {
    let server = Server::start(&[("HEADER_READ_TIMEOUT_SECS", "2")]);
    let addr = server.addr;
    assert_eq!(healthz(addr), 200);
    let rss_before = server.rss_kib();

    // 200 connections that send a request head a byte at a time.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // 200 connections that each push 256 KiB of one unfinished header: hyper's
    // default buffer (about 400 KB) would hold all of it, 50 MB in all.
    let pad = vec![b'a'; 256 * 1024];
    let mut fat: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = connect(addr);
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ");
            // Refused with 431 and closed after MAX_HEADER_BYTES: errors expected.
            let _ = s.write_all(&pad);
            s
        })
        .collect();
    let mut rss_loaded = server.rss_kib();

    // Trickle for about twice the header timeout, checking /healthz as we go.
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_millis(4500) && rounds < 40 {
        for s in &mut slow {
            let _ = s.write_all(b"a");
        }
        if rounds % 4 == 0 {
            assert_eq!(healthz(addr), 200, "S13: /healthz answers under slowloris");
        }
        std::thread::sleep(Duration::from_millis(250));
        rss_loaded = rss_loaded.max(server.rss_kib());
        rounds += 1;
    }

    let growth_mib = rss_loaded.saturating_sub(rss_before) / 1024;
    eprintln!("RSS {rss_before} KiB -> peak {rss_loaded} KiB");
    assert!(
        growth_mib < 24,
        "S13: 400 slow connections grew the server by {growth_mib} MiB \
         ({rss_before} KiB -> {rss_loaded} KiB)"
    );
    // Past the header timeout every one of them should be closed by now; stop
    // looking after a few that are not.
    let still_open = slow
        .iter_mut()
        .chain(fat.iter_mut())
        .map(|s| closed_by_server(s, Duration::from_millis(500)))
        .filter(|closed| !closed)
        .take(5)
        .count();
    assert_eq!(
        still_open, 0,
        "connections past the header timeout or the head size are closed"
    );
    assert_eq!(healthz(addr), 200);
    assert!(server.stop().success());
}

#[test]
fn s13_idle_keep_alive_connections_are_closed() {
    let server = Server::start(&[("HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut s = connect(server.addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    // The response, then (keep-alive) nothing more: the server closes the
    // connection once the header timeout passes without a next request.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let ended = s.read_to_end(&mut got);
    assert!(ended.is_ok(), "the idle connection was closed: {ended:?}");
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn s13_connections_beyond_the_cap_are_closed_and_slots_come_back() {
    let server = Server::start(&[("MAX_CONNECTIONS", "20")]);
    let addr = server.addr;
    // 20 kept-alive connections, each answered once, so each holds a slot.
    let mut held: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut first = [0_u8; 12];
            s.read_exact(&mut first).unwrap();
            assert_eq!(&first, b"HTTP/1.1 200");
            s
        })
        .collect();
    let mut extra = connect(addr);
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(
        closed_by_server(&mut extra, Duration::from_secs(5)),
        "the connection past the cap is closed"
    );
    held.clear();
    // The slots come back once the held connections are gone.
    let mut status = 0;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let mut s = connect(addr);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ =
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        if got.starts_with(b"HTTP/1.1 200") {
            status = 200;
            break;
        }
    }
    assert_eq!(status, 200, "slots are released");
    assert!(server.logs().contains("connection limit reached"));
    assert!(server.stop().success());
}

#[test]
fn shutdown_finishes_within_the_grace_period_despite_stalled_clients() {
    let mut server = Server::start(&[
        ("SHUTDOWN_GRACE_SECS", "2"),
        ("HEADER_READ_TIMEOUT_SECS", "120"),
        ("BODY_READ_TIMEOUT_SECS", "120"),
    ]);
    let addr = server.addr;
    // A half-sent head and a half-sent body, both held open.
    let mut head = connect(addr);
    head.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut body = connect(addr);
    body.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
    )
    .unwrap();
    assert_eq!(healthz(addr), 200);
    std::thread::sleep(Duration::from_millis(300));

    server.terminate();
    // Grace 2 s plus a wide margin; before, it never exited.
    let status = server.wait_exit(Duration::from_secs(20));
    let logs = server.logs();
    let status = status.unwrap_or_else(|| panic!("still running after SIGTERM: {logs}"));
    assert!(status.success(), "{logs}");
    assert!(logs.contains("grace period over"), "{logs}");
    assert!(logs.contains("stopped"), "the outbox was flushed: {logs}");
    assert!(closed_by_server(&mut head, Duration::from_secs(5)));
    assert!(closed_by_server(&mut body, Duration::from_secs(5)));
}

#[test]
fn s13_a_stalled_body_is_refused_after_the_body_timeout() {
    let server = Server::start(&[("BODY_READ_TIMEOUT_SECS", "1")]);
    let mut s = connect(server.addr);
    s.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let ended = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(ended.is_ok(), "answered and closed: {ended:?}");
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("\"invalid_request\""),
        "in the envelope: {text}"
    );
    assert_eq!(healthz(server.addr), 200);
}
