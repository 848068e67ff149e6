//! The run dir and the data dir before any child starts: both created mode
//! 0700, the run dir locked (one supervisor per run dir), stale sockets
//! removed, and `client.toml` written for clients.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use yak_protocol::paths;

use crate::config::Config;
use crate::error::Error;

pub(crate) fn prepare_dirs(config: &Config) -> Result<(), Error> {
    let create_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::CreateDir { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.run_dir)
        .map_err(create_err(&config.run_dir))?;
    std::fs::set_permissions(&config.run_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(create_err(&config.run_dir))?;
    // Logs and metadata are the user's alone, like the sockets.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .map_err(create_err(&config.data_dir))?;
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(create_err(&config.data_dir))
}

/// The text of `RUN/client.toml`, or `None` when there is nothing to say.
pub(crate) fn client_config_text(config: &Config) -> Option<String> {
    let plugin = config.partitioner.as_ref()?;
    let quoted = toml::Value::String(plugin.display().to_string()).to_string();
    Some(format!(
        "# Written by yak-supervisor from its config; read by `yak-node produce`.\npartitioner = {quoted}\n"
    ))
}

/// Writes `RUN/client.toml` (clients are separate processes, so cluster-wide
/// client defaults travel through the run dir), or removes a stale one.
pub(crate) fn write_client_config(config: &Config) -> Result<(), Error> {
    let path = paths::client_config(&config.run_dir);
    let result = match client_config_text(config) {
        Some(text) => {
            if config.partitioner.as_ref().is_some_and(|p| !p.is_file()) {
                tracing::warn!(path = %path.display(), "the partitioner plugin named in the config does not exist (yet); run `make plugins`");
            }
            std::fs::write(&path, text)
        }
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    result.map_err(|source| Error::ClientConfig { path, source })
}

/// Takes `RUN/supervisor.lock`; held until the returned value drops.
pub(crate) fn lock_run_dir(run_dir: &Path) -> Result<Flock<File>, Error> {
    let path = paths::supervisor_run_lock(run_dir);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::OpenLock {
            path: path.clone(),
            source,
        })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((_, Errno::EWOULDBLOCK)) => Err(Error::AlreadyRunning {
            dir: run_dir.to_path_buf(),
        }),
        Err((_, source)) => Err(Error::Lock { path, source }),
    }
}

/// Removes every `*.sock` in `dir`.
pub(crate) fn remove_sockets(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if paths::is_socket_file(&path) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}
