//! `warden serve`'s connections are accepted without Nagle's delay. With it, an answer
//! written in pieces (every MCP answer over `/mcp`, every streamed chat completion)
//! had each later piece wait about 40 ms for the client's delayed acknowledgement.
//! The server runs in this process, so its end of a connection is one of this
//! process's sockets, and the test reads the option there instead of timing anything.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::Test;

/// The IPv4 address of `fd` as `name` (`getsockname` or `getpeername`) gives it.
#[expect(
    unsafe_code,
    reason = "libc socket calls on a descriptor of this process"
)]
fn address(
    fd: RawFd,
    name: unsafe extern "C" fn(
        libc::c_int,
        *mut libc::sockaddr,
        *mut libc::socklen_t,
    ) -> libc::c_int,
) -> Option<SocketAddr> {
    // SAFETY: a zeroed `sockaddr_in` is a valid value of it.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` and `len` are valid for writes of `len` bytes; a descriptor that
    // is not a socket only makes the call fail.
    let ok = unsafe { name(fd, (&raw mut addr).cast(), &mut len) } == 0;
    (ok && i32::from(addr.sin_family) == libc::AF_INET).then(|| {
        SocketAddr::from((
            u32::from_be(addr.sin_addr.s_addr).to_be_bytes(),
            u16::from_be(addr.sin_port),
        ))
    })
}

/// Whether `TCP_NODELAY` is set on `fd`.
#[expect(
    unsafe_code,
    reason = "a libc socket call on a descriptor of this process"
)]
fn nodelay(fd: RawFd) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `on` and `len` are valid for writes of `len` bytes.
    let ok = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw mut on).cast(),
            &mut len,
        )
    } == 0;
    assert!(ok, "getsockopt TCP_NODELAY");
    on != 0
}

/// The descriptor of this process whose socket is `local` connected to `peer`.
fn socket_between(local: SocketAddr, peer: SocketAddr) -> Option<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .find(|&fd| {
            address(fd, libc::getsockname) == Some(local)
                && address(fd, libc::getpeername) == Some(peer)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_accepted_without_nagles_delay() {
    let t = Test::start(&[], "").await;
    let mut client = TcpStream::connect(t.server.addr()).await.unwrap();
    // An answer on it: the server has accepted the connection and set it up.
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0; 1024];
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let accepted = socket_between(t.server.addr(), client.local_addr().unwrap())
        .expect("the server's end of the connection, among this process's descriptors");
    assert!(nodelay(accepted), "the server's end has Nagle's delay on");
    t.server.shutdown().await;
}
