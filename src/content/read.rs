//! Reading one article file: opened once, without blocking, and checked as opened (inside
//! the content dir, a regular file), then read up to `max_article_bytes`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{io_reason, Loader, SkipReason, Skipped};

impl Loader {
    /// Opens a media file as articles are opened ([`Loader::open_inside`]: inside the
    /// content dir, a regular file), refusing empty files and files over
    /// `max_media_bytes`. The caller sends from the descriptor (the bytes are never read
    /// into memory here).
    pub fn open_media(&self, rel: &str) -> Result<(fs::File, fs::Metadata), Skipped> {
        let (file, meta) = self.open_inside(rel, &self.root.join(rel))?;
        if meta.len() == 0 {
            return Err(Skipped::new(
                rel,
                SkipReason::EmptyMedia,
                "skipped: empty media file",
            ));
        }
        if meta.len() > self.max_media_bytes {
            return Err(Skipped::new(
                rel,
                SkipReason::TooLarge,
                format!(
                    "skipped: {} bytes, more than content.max_media_bytes ({})",
                    meta.len(),
                    self.max_media_bytes
                ),
            ));
        }
        Ok((file, meta))
    }

    /// A media file's bytes, opened as [`Loader::open_media`] opens it (to upload it
    /// somewhere; serving sends from the descriptor instead).
    pub fn read_media(&self, rel: &str) -> anyhow::Result<Vec<u8>> {
        use std::io::Read;
        let (mut file, meta) = self.open_media(rel).map_err(|s| anyhow::anyhow!("{s}"))?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// A file of the site that is not an article (the content dir's own `robots.txt`),
    /// opened as articles are ([`Loader::open_inside`]) and read up to `cap` bytes. None
    /// when there is no such file; a reason when it cannot be used.
    pub fn read_site_file(&self, rel: &str, cap: u64) -> Result<Option<Vec<u8>>, Skipped> {
        let abs = self.root.join(rel);
        if std::fs::symlink_metadata(&abs).is_err() {
            return Ok(None);
        }
        let (file, meta) = self.open_inside(rel, &abs)?;
        if meta.len() > cap {
            return Err(Skipped::new(
                rel,
                SkipReason::TooLarge,
                format!("skipped: {} bytes, more than {cap}", meta.len()),
            ));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(cap).read_to_end(&mut bytes).map_err(|e| {
            Skipped::new(
                rel,
                SkipReason::Unreadable,
                format!("unreadable: {}", io_reason(Some(&e))),
            )
        })?;
        Ok(Some(bytes))
    }

    /// Opens `abs` once and checks *what was opened*: a regular file inside the content dir.
    ///
    /// Checking the path first and opening it again would let a file swapped for a symlink in
    /// between (`renameat2(RENAME_EXCHANGE)` in a loop does it within seconds) publish a file
    /// from outside the content dir, so the check is part of the open: `openat2` resolving
    /// beneath the content dir ([`open_beneath`]), or, where it cannot tell, a plain open
    /// checked on the descriptor: the kernel's own name for it (`/proc/self/fd/N`), which
    /// symlinks along the path cannot fake. The
    /// open never blocks (`O_NONBLOCK`: a FIFO swapped in would otherwise hang the loader
    /// until a writer came), and the type is checked on the descriptor (`fstat`) before a
    /// byte is read.
    pub(super) fn open_inside(
        &self,
        rel: &str,
        abs: &Path,
    ) -> Result<(fs::File, fs::Metadata), Skipped> {
        use std::os::unix::fs::OpenOptionsExt;
        // The kernel's check first (one system call); a path it will not resolve beneath
        // the root (an absolute symlink, say) or an older kernel takes the long way.
        let (opened, beneath) = match open_beneath(&self.root, rel) {
            Some(r) => (r, true),
            None => (
                fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                    .open(abs),
                false,
            ),
        };
        let file = opened.map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                Skipped::new(rel, SkipReason::FilesystemLoop, "skipped: symlink loop")
            }
            _ => Skipped::new(
                rel,
                SkipReason::Unreadable,
                format!("unreadable: {}", io_reason(Some(&e))),
            ),
        })?;
        let meta = file.metadata().map_err(|e| {
            Skipped::new(
                rel,
                SkipReason::Unreadable,
                format!("unreadable: {}", io_reason(Some(&e))),
            )
        })?;
        if !meta.is_file() {
            return Err(Skipped::new(
                rel,
                SkipReason::NotRegularFile,
                "skipped: not a regular file",
            ));
        }
        if beneath {
            return Ok((file, meta));
        }
        let root = match &self.root_canon {
            Some(r) => std::borrow::Cow::Borrowed(r.as_path()),
            None => match fs::canonicalize(&self.root) {
                Ok(r) => std::borrow::Cow::Owned(r),
                Err(e) => {
                    return Err(Skipped::new(
                        rel,
                        SkipReason::Unreadable,
                        format!("unreadable: content dir: {}", io_reason(Some(&e))),
                    ))
                }
            },
        };
        match opened_path(&file, abs, &meta) {
            Some(target) if target.starts_with(&root) => Ok((file, meta)),
            Some(target) => Err(Skipped::new(
                rel,
                SkipReason::SymlinkOutside,
                format!(
                    "skipped: symlink to {} outside the content dir",
                    target.display()
                ),
            )),
            None => Err(Skipped::new(
                rel,
                SkipReason::Unreadable,
                "unreadable: changed while it was opened",
            )),
        }
    }

    /// Reads a file of at most `max_article_bytes`; `meta` gets its metadata (of the open
    /// file, see [`Loader::open_inside`]).
    pub(super) fn read_capped(
        &self,
        rel: &str,
        abs: &Path,
        meta: &mut Option<fs::Metadata>,
    ) -> Result<Vec<u8>, Skipped> {
        let (file, m) = self.open_inside(rel, abs)?;
        let meta = meta.insert(m);
        let too_large = |n: u64| {
            Skipped::new(
                rel,
                SkipReason::TooLarge,
                format!(
                    "skipped: {n} bytes is over max_article_bytes ({})",
                    self.max_bytes
                ),
            )
        };
        if meta.len() > self.max_bytes {
            return Err(too_large(meta.len()));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        // The file may grow between stat and read: never read more than the cap.
        file.take(self.max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Skipped::new(
                    rel,
                    SkipReason::Unreadable,
                    format!("unreadable: {}", io_reason(Some(&e))),
                )
            })?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(bytes)
    }
}

/// Opens `rel` for reading under `root` with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`:
/// the kernel resolves every component, symlinks included, and refuses whatever would leave
/// `root`, so what is opened is inside it. `O_NONBLOCK`: a FIFO never blocks the open. None
/// when the kernel cannot tell (no `openat2`: before Linux 5.6 or filtered; `EXDEV`: a
/// symlink that is absolute or leads out), for the caller to check the long way.
#[allow(unsafe_code)]
fn open_beneath(root: &Path, rel: &str) -> Option<std::io::Result<fs::File>> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)
    {
        Ok(d) => d,
        Err(e) => return Some(Err(e)),
    };
    let path = std::ffi::CString::new(rel).ok()?;
    // SAFETY: zero is a valid value for every field of this plain C struct.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: a valid directory descriptor, a NUL-terminated path and an `open_how` of the
    // size given; the call only reads them and returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
        return Some(Ok(unsafe { fs::File::from_raw_fd(fd as i32) }));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM | libc::EXDEV | libc::EAGAIN | libc::EINVAL) => None,
        _ => Some(Err(e)),
    }
}

/// The real path of an open file: the kernel's name for the descriptor, or, where `/proc`
/// is not mounted, `abs` resolved now if it still names the same file (device and inode).
fn opened_path(file: &fs::File, abs: &Path, meta: &fs::Metadata) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    if let Ok(p) = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        return Some(p);
    }
    let target = fs::canonicalize(abs).ok()?;
    let now = fs::metadata(&target).ok()?;
    (now.dev() == meta.dev() && now.ino() == meta.ino()).then_some(target)
}
