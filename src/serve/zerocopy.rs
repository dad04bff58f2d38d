//! Large bodies sent straight from the page cache, as a static file server sends files.
//!
//! A plain `/feed.atom` of 50 full entries is ~230 KB. Written from the heap, the kernel
//! copies all of it into the socket for every response (half of herald's CPU under load);
//! nginx serving the same bytes as a file uses `sendfile(2)`, which hands the socket
//! references to page-cache pages instead. So large bodies (the main feeds, the index, the
//! OPML) are written once per version to an unlinked file and mapped read-only: the body's
//! `Bytes` are that mapping, and [`Stream`], the connection type hyper writes to, recognises
//! a slice of a registered mapping and sends it with `sendfile` from the file, the response
//! head before it with `MSG_MORE` so that both leave in full segments. Everything else is
//! written as usual, and any `sendfile` error other than "would block" falls back to plain
//! writes for the connection.
//!
//! The stream also keeps a connection honest: a write the client does not take for the send
//! timeout fails the connection (a reader that never reads cannot hold it), and every read
//! or write that moves bytes marks its [`Activity`], from which the accept loop picks the
//! connection to close when all are taken.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bodies at least this large are file-backed (smaller ones cost more in system calls than
/// the copy they save).
pub const MIN_LEN: usize = 64 * 1024;

/// Registered mappings: start address → what is sent from there.
type Regions = BTreeMap<usize, Registered>;

struct Registered {
    len: usize,
    file: Arc<File>,
    /// Where the region starts in the file.
    offset: u64,
    /// The region's memory is not the file's bytes (see [`file_slice`]): never written from.
    stand_in: bool,
}

fn regions() -> &'static RwLock<Regions> {
    static REGIONS: RwLock<Regions> = RwLock::new(BTreeMap::new());
    &REGIONS
}

/// How many mappings are registered: writes look nothing up while there are none.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A body's bytes in an unlinked file in `dir`, mapped; registered for `sendfile` while the
/// returned `Bytes` (and any slice of them) live. Errors leave the caller to keep the body
/// on the heap.
pub fn file_backed(dir: &Path, body: &[u8]) -> io::Result<Bytes> {
    if body.is_empty() {
        return Ok(Bytes::new());
    }
    let file = private_file(dir)?;
    (&file).write_all(body)?;
    let map = map(&file)?;
    let start = map.as_ptr() as usize;
    let file = Arc::new(file);
    register(start, body.len(), file.clone(), 0, false);
    Ok(Bytes::from_owner(Region {
        map,
        start,
        _file: file,
    }))
}

fn register(start: usize, len: usize, file: Arc<File>, offset: u64, stand_in: bool) {
    regions().write().unwrap_or_else(|e| e.into_inner()).insert(
        start,
        Registered {
            len,
            file,
            offset,
            stand_in,
        },
    );
    LIVE.fetch_add(1, Relaxed);
}

/// `len` bytes of a file that is not ours (a media file in the content dir) from
/// `offset`, as a body: the `Bytes` are a stand-in (an anonymous mapping of zero pages,
/// address space only) registered with the file, and [`Stream`] sends them with
/// `sendfile` from the descriptor, or reads the file (`pread`) where it cannot: the
/// stand-in's memory is never sent. The file is never mapped (another process truncating a
/// mapped file would make reading it fault), and its bytes are never held in memory; a
/// file replaced while it is sent keeps sending the bytes that were opened.
pub fn file_slice(file: Arc<File>, offset: u64, len: usize) -> io::Result<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    let map = memmap2::MmapOptions::new()
        .len(len)
        .map_anon()?
        .make_read_only()?;
    let start = map.as_ptr() as usize;
    register(start, len, file.clone(), offset, true);
    Ok(Bytes::from_owner(Region {
        map,
        start,
        _file: file,
    }))
}

/// A new file in `dir`, unlinked at once: only this process can reach it, and its space is
/// freed when the last handle closes.
fn private_file(dir: &Path) -> io::Result<File> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = dir.join(format!(
        ".body-{}-{}",
        std::process::id(),
        N.fetch_add(1, Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Maps all of `file`, read-only.
#[allow(unsafe_code)]
fn map(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and its bytes never change while it lives: the file
    // was unlinked at creation (no other process can reach it) and is written only before
    // it is mapped, by `file_backed`, which never touches it again.
    unsafe { memmap2::Mmap::map(file) }
}

/// A mapped body; unregistered before it is unmapped.
struct Region {
    map: memmap2::Mmap,
    start: usize,
    _file: Arc<File>,
}

impl AsRef<[u8]> for Region {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        regions()
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.start);
        LIVE.fetch_sub(1, Relaxed);
    }
}

/// The file and offset holding `buf`, if `buf` lies in a registered mapping. Only slices
/// of [`MIN_LEN`] or more are looked up: the rest of a body that was partly sent is written
/// as usual, and smaller bodies (a feed's gzip variant, every head) take no lock at all.
fn find(buf: &[u8]) -> Option<Found> {
    if buf.is_empty() || LIVE.load(Relaxed) == 0 {
        return None;
    }
    let at = buf.as_ptr() as usize;
    let regions = regions().read().unwrap_or_else(|e| e.into_inner());
    let (&start, r) = regions.range(..=at).next_back()?;
    // A stand-in is always found (its memory must never be written); a body of our own only
    // when large enough to be worth `sendfile`.
    (at + buf.len() <= start + r.len && (r.stand_in || buf.len() >= MIN_LEN)).then(|| Found {
        file: r.file.clone(),
        offset: r.offset + (at - start) as u64,
        stand_in: r.stand_in,
    })
}

/// Where a body slice's bytes are in a file.
struct Found {
    file: Arc<File>,
    offset: u64,
    stand_in: bool,
}

/// `sendfile(2)`: up to `len` bytes of `file` from `offset` to the socket `out`.
#[allow(unsafe_code)]
fn sendfile(out: RawFd, file: &File, offset: u64, len: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: both descriptors are open for the whole call (`file` is borrowed, `out` is the
    // connection's socket, owned by the caller's `TcpStream`), and `off` is a live local the
    // kernel only writes the new offset to.
    let n = unsafe { libc::sendfile(out, file.as_raw_fd(), &mut off, len) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Up to `len` bytes of `file` from `offset` (fewer at its end).
fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; len];
    let n = file.read_at(&mut buf, offset)?;
    buf.truncate(n);
    Ok(buf)
}

/// `send(2)` with `MSG_MORE`: the kernel holds a partial segment for what follows.
#[allow(unsafe_code)]
fn send_more(out: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live slice of `buf.len()` bytes and `out` an open socket.
    let n = unsafe {
        libc::send(
            out,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_MORE | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// When a connection last moved bytes, shared between its stream and the accept loop.
#[derive(Debug, Default)]
pub struct Activity {
    /// Milliseconds since the process's first connection.
    last: AtomicU64,
}

impl Activity {
    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    fn now_ms() -> u64 {
        Self::epoch().elapsed().as_millis() as u64
    }

    pub fn new() -> Activity {
        let a = Activity::default();
        a.touch();
        a
    }

    pub fn touch(&self) {
        self.last.store(Self::now_ms(), Relaxed);
    }

    /// How long since the connection last moved a byte: idle between requests, or stalled
    /// on a client that does not read.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(Self::now_ms().saturating_sub(self.last.load(Relaxed)))
    }
}

/// A client connection as hyper sees it: tokio's stream, except that a slice of a
/// file-backed body is sent with `sendfile`, and a write that makes no progress for the
/// send timeout fails.
pub struct Stream {
    io: TokioIo<TcpStream>,
    /// `sendfile` failed for a reason other than a full socket: plain writes from now on.
    plain: bool,
    activity: Arc<Activity>,
    send_timeout: Duration,
    /// Armed while a write waits for the client to make room.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stream {
    pub fn new(stream: TcpStream, activity: Arc<Activity>, send_timeout: Duration) -> Stream {
        Stream {
            io: TokioIo::new(stream),
            plain: false,
            activity,
            send_timeout,
            stalled: None,
        }
    }

    /// Passes a write's outcome on, timing how long it has waited for the client: past the
    /// send timeout without progress, the write fails (and hyper closes the connection).
    fn watch_write(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Pending => {
                let timeout = self.send_timeout;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took nothing for the send timeout",
                    )));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(n)) => {
                self.stalled = None;
                if n > 0 {
                    self.activity.touch();
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    /// Runs a non-blocking socket call once the socket can take more.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        call: impl Fn(RawFd) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let tcp = self.io.inner();
            ready!(tcp.poll_write_ready(cx))?;
            match tcp.try_io(Interest::WRITABLE, || call(tcp.as_raw_fd())) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.activity.touch();
        }
        r
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = self.as_mut().write_some(cx, bufs);
        self.watch_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Stream {
    /// One write: a file-backed slice with `sendfile` (its head first, with `MSG_MORE`),
    /// anything else as tokio writes it.
    fn write_some(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        use hyper::rt::Write as _;
        // hyper hands the head and the body together: the head goes with MSG_MORE, then
        // (on the next call) the body with sendfile.
        let backed = bufs.iter().position(|b| find(b).is_some());
        match backed {
            Some(0) => {
                let Some(found) = find(&bufs[0]) else {
                    return Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
                };
                let len = bufs[0].len();
                if !self.plain {
                    let (file, offset) = (&found.file, found.offset);
                    match ready!(self.poll_send(cx, |fd| sendfile(fd, file, offset, len))) {
                        Ok(n) => return Poll::Ready(Ok(n)),
                        // Not supported here, say: plain writes from now on.
                        Err(_) => self.plain = true,
                    }
                }
                if found.stand_in {
                    // The stand-in's memory is not the bytes: read them from the file.
                    let chunk = read_at(&found.file, found.offset, len.min(256 << 10))?;
                    if chunk.is_empty() {
                        // The file shrank while it was sent: end the connection, never pad.
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    return Pin::new(&mut self.io).poll_write(cx, &chunk);
                }
                Pin::new(&mut self.io).poll_write_vectored(cx, &bufs[..1])
            }
            Some(1) if !self.plain => {
                let head: &[u8] = &bufs[0];
                self.poll_send(cx, |fd| send_more(fd, head))
            }
            Some(i) => Pin::new(&mut self.io).poll_write_vectored(cx, &bufs[..i]),
            None => Pin::new(&mut self.io).poll_write_vectored(cx, bufs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_backed_bodies_are_found_while_they_live() {
        let dir = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..MIN_LEN * 2).map(|i| (i % 251) as u8).collect();
        let bytes = file_backed(dir.path(), &body).unwrap();
        assert_eq!(&bytes[..], &body[..]);
        // The file is private: nothing is left in the dir.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let part = bytes.slice(1000..MIN_LEN + 1000);
        assert_eq!(find(&part).unwrap().offset, 1000);
        assert!(
            find(&body[..MIN_LEN]).is_none(),
            "a heap copy is not file-backed"
        );
        assert!(
            find(&bytes[..MIN_LEN - 1]).is_none(),
            "too small to be worth sendfile"
        );
        let start = bytes.as_ptr() as usize;
        drop(bytes);
        // Still registered while a slice lives, and gone with the last one.
        assert!(find(&part).is_some());
        drop(part);
        let regions = regions().read().unwrap();
        assert!(!regions.contains_key(&start));
    }
}
