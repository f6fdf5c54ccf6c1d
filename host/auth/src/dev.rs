//! Dev mode's secret: generated once into the data directory and reused after.

use std::fs;
use std::io::{self, Write as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::{AuthError, Secret};

/// The `iss` of dev-mode tokens.
pub const DEV_ISSUER: &str = "netra-dev";
/// The `aud` of dev-mode tokens.
pub const DEV_AUDIENCE: &str = "netra";
/// The file in the data directory that holds the dev-mode HS256 secret.
pub const DEV_SECRET_FILE: &str = "dev-jwt-secret";

/// Random bytes in a generated secret.
const SECRET_LEN: usize = 32;

pub(crate) fn load_or_create_secret(data_dir: &Path) -> Result<Secret, AuthError> {
    let path = data_dir.join(DEV_SECRET_FILE);
    match fs::symlink_metadata(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_secret(data_dir)?,
        Err(source) => return Err(AuthError::Read { path, source }),
    }
    warn_if_shared(&path);
    Secret::from_file(&path)
}

/// Writes a fresh secret to a private temporary file, then links it into place. The link
/// fails if the file exists, so two hosts (or a host and `netra token`) starting together
/// end up with the first one's complete secret, never a mix or a half-written file.
fn create_secret(data_dir: &Path) -> Result<(), AuthError> {
    let path = data_dir.join(DEV_SECRET_FILE);
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| AuthError::Write { path, source }
    };
    fs::create_dir_all(data_dir).map_err(write_err(data_dir))?;

    let mut raw = Zeroizing::new([0u8; SECRET_LEN]);
    getrandom::fill(raw.as_mut_slice()).map_err(|e| AuthError::Random(e.to_string()))?;
    let mut text = Zeroizing::new(URL_SAFE_NO_PAD.encode(raw.as_slice()));
    text.push('\n');

    let nonce = getrandom::u64().map_err(|e| AuthError::Random(e.to_string()))?;
    let tmp = data_dir.join(format!(".{DEV_SECRET_FILE}.{nonce:016x}.tmp"));
    write_private(&tmp, text.as_bytes()).map_err(write_err(&tmp))?;
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        // Some filesystems have no hard links; exclusive creation still never clobbers.
        Err(_) => match write_private(&path, text.as_bytes()) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other.map_err(write_err(&path)),
        },
    }
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// The secret signs tokens for any user, so a file others can read deserves a word.
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the dev JWT secret is readable by other users; run `chmod 600` on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
