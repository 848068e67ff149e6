//! Unix-domain sockets through `interprocess`, handed out as std streams so
//! callers get timeouts and `try_clone`.

use interprocess::local_socket::{traits::ListenerExt, GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::uds_local_socket as uds;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A listening socket.
pub struct Listener(uds::Listener);

impl Listener {
    /// Binds `path`, replacing a stale socket file left by a dead process.
    pub fn bind(path: &Path) -> io::Result<Listener> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is served by a running process", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let name = path.to_fs_name::<GenericFilePath>()?;
        let listener = ListenerOptions::new().name(name).create_sync_as::<uds::Listener>()?;
        Ok(Listener(listener))
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<UnixStream> {
        let stream = self.0.incoming().next().unwrap_or_else(|| Err(io::ErrorKind::BrokenPipe.into()))?;
        Ok(UnixStream::from(OwnedFd::from(stream)))
    }
}

/// Connects to the socket at `path` with a timeout on every read and write.
pub fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let name = path.to_fs_name::<GenericFilePath>()?;
    let stream: uds::Stream = interprocess::local_socket::traits::Stream::connect(name)?;
    let stream = UnixStream::from(OwnedFd::from(stream));
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}
