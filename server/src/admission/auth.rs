//! `--auth-tokens`: bearer tokens and the principals they name, and the
//! ownership rule. The file holds `PRINCIPAL TOKEN` lines (`#` starts a
//! comment); SIGHUP reloads it. When set, every bank.v1 call must carry
//! `authorization: Bearer TOKEN` (else UNAUTHENTICATED), and may only touch
//! accounts its principal opened (else PERMISSION_DENIED). Tokens are
//! compared in constant time and never logged. Health and reflection are
//! other services and stay open. A call holds a [`Session`]: a stream
//! checks it again before each message, so a reload that revokes or changes
//! its token ends the stream at its next message (one atomic compare when
//! nothing was reloaded).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The largest token file accepted, in bytes.
pub const MAX_TOKEN_FILE_BYTES: u64 = 1 << 20;
/// The most principals (lines) a token file may hold.
pub const MAX_PRINCIPALS: usize = 10_000;
/// The longest principal name, in bytes.
pub const MAX_PRINCIPAL_BYTES: usize = 128;
/// The bounds of a token's length, in bytes.
pub const TOKEN_BYTES: std::ops::RangeInclusive<usize> = 16..=512;

/// Why a call is refused: the one auth error, mapped to a status in `crate::rpc::status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer …` metadata, or an unknown token.
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    /// The token of an open stream was revoked, or now names another
    /// principal, since the stream began (a reload of the token file).
    #[error("the bearer token of this stream was revoked or changed by a reload of the token file")]
    Revoked,
    /// The account is not the caller's: another principal's, or none at all
    /// (the same answer, so that account ids cannot be probed).
    #[error("account {0:?} is not an account of this principal")]
    PermissionDenied(String),
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub Arc<str>);

/// What the token check found, put in the request's extensions (absent
/// without tokens). A refusal is answered by the handler, which counts and
/// logs it like any other error.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Result<Session, AuthError>);

/// A call's authentication: its principal, and the token-file entry it came
/// from, re-checkable after a reload ([`Session::recheck`]).
#[derive(Clone)]
pub struct Session {
    principal: Principal,
    entry: Arc<Entry>,
    auth: Arc<Auth>,
    /// The token file's generation last seen to hold `entry`'s token for `principal`.
    generation: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Session")
            .field("principal", &self.principal)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether the token still names the same principal in the token file
    /// now loaded: free (one atomic load) unless the file was reloaded since
    /// the last check, then one lookup. `Revoked` once it does not.
    pub fn recheck(&mut self) -> Result<(), AuthError> {
        let now = self.auth.generation();
        if now == self.generation {
            return Ok(());
        }
        match self.auth.find(&self.entry.token) {
            Some((found, _)) if found.principal == self.entry.principal => {
                self.generation = now;
                Ok(())
            }
            _ => Err(AuthError::Revoked),
        }
    }
}

/// One `PRINCIPAL TOKEN` line.
#[derive(Clone)]
struct Entry {
    principal: Arc<str>,
    token: Vec<u8>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Entry")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// The token file, loaded; reloadable.
pub struct Auth {
    path: PathBuf,
    entries: RwLock<Arc<Vec<Arc<Entry>>>>,
    /// Bumped by every reload that replaced the entries (under their write lock).
    generation: AtomicU64,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("Auth")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Loads the token file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let entries = read_file(path)?;
        Ok(Auth {
            path: path.to_owned(),
            entries: RwLock::new(Arc::new(entries)),
            generation: AtomicU64::new(0),
        })
    }

    /// Reads the file again; on error the old tokens stay. Returns the number of principals.
    pub fn reload(&self) -> Result<usize, String> {
        let entries = read_file(&self.path)?;
        let n = entries.len();
        let mut slot = self.entries.write();
        *slot = Arc::new(entries);
        // Bumped before the lock is let go: whoever sees the new entries sees the new generation.
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(n)
    }

    /// How many reloads replaced the tokens so far.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The principal of the bearer token in `metadata`.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, AuthError> {
        let presented = bearer(metadata).ok_or(AuthError::Unauthenticated)?;
        let (entry, _) = self.find(presented).ok_or(AuthError::Unauthenticated)?;
        Ok(Principal(Arc::clone(&entry.principal)))
    }

    /// [`Auth::authenticate`], as a [`Session`] that can be checked again after a reload.
    pub fn session(self: &Arc<Self>, metadata: &MetadataMap) -> Result<Session, AuthError> {
        let presented = bearer(metadata).ok_or(AuthError::Unauthenticated)?;
        let (entry, generation) = self.find(presented).ok_or(AuthError::Unauthenticated)?;
        Ok(Session {
            principal: Principal(Arc::clone(&entry.principal)),
            entry,
            auth: Arc::clone(self),
            generation,
        })
    }

    /// The entry holding `presented`, and the generation of the entries searched.
    fn find(&self, presented: &[u8]) -> Option<(Arc<Entry>, u64)> {
        let (entries, generation) = {
            let slot = self.entries.read();
            (Arc::clone(&slot), self.generation())
        };
        // Every entry is compared, so the time does not tell which one matched.
        let mut found = None;
        for e in entries.iter() {
            if bool::from(e.token.as_slice().ct_eq(presented)) {
                found = Some(Arc::clone(e));
            }
        }
        found.map(|e| (e, generation))
    }
}

/// The token of `authorization: Bearer TOKEN`, if present.
fn bearer(metadata: &MetadataMap) -> Option<&[u8]> {
    let value = metadata.get("authorization")?.as_bytes();
    let scheme = b"bearer ";
    if value.len() <= scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return None;
    }
    Some(value[scheme.len()..].trim_ascii())
}

fn read_file(path: &Path) -> Result<Vec<Arc<Entry>>, String> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .len();
    if len > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "{shown}: {len} bytes; the limit is {MAX_TOKEN_FILE_BYTES}"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    parse(&text).map_err(|e| format!("{shown}: {e}"))
}

/// Parses `PRINCIPAL TOKEN` lines; errors name the line, never the token.
fn parse(text: &str) -> Result<Vec<Arc<Entry>>, String> {
    let mut entries: Vec<Arc<Entry>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(principal), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("line {}: expected `PRINCIPAL TOKEN`", i + 1));
        };
        if principal.len() > MAX_PRINCIPAL_BYTES || !TOKEN_BYTES.contains(&token.len()) {
            return Err(format!(
                "line {}: a principal is at most {MAX_PRINCIPAL_BYTES} bytes, a token {} to {} bytes",
                i + 1,
                TOKEN_BYTES.start(),
                TOKEN_BYTES.end()
            ));
        }
        if entries.iter().any(|e| e.token == token.as_bytes()) {
            return Err(format!(
                "line {}: this token is already given to another line",
                i + 1
            ));
        }
        if entries.len() >= MAX_PRINCIPALS {
            return Err(format!("more than {MAX_PRINCIPALS} tokens"));
        }
        entries.push(Arc::new(Entry {
            principal: Arc::from(principal),
            token: token.as_bytes().to_vec(),
        }));
    }
    Ok(entries)
}

/// The interceptor in front of `bank.v1`: authenticates when tokens are set
/// and leaves the caller's [`Principal`] in the request's extensions.
#[derive(Debug, Clone, Default)]
pub struct Authenticate {
    auth: Option<Arc<Auth>>,
}

impl Authenticate {
    /// Checks tokens against `auth`; `None` lets every call through.
    pub fn new(auth: Option<Arc<Auth>>) -> Self {
        Authenticate { auth }
    }
}

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(auth) = &self.auth {
            let found = auth.session(request.metadata());
            request.extensions_mut().insert(Authenticated(found));
        }
        Ok(request)
    }
}

/// Whether `principal` may act on `account`: always without tokens (no
/// principal), else only on the accounts it opened. `None` is an account
/// that does not exist: it is nobody's, so refused the same way, and a
/// caller cannot tell another's account from no account.
pub fn authorize(
    principal: Option<&Principal>,
    account_id: &str,
    owner: Option<&str>,
) -> Result<(), AuthError> {
    let Some(Principal(caller)) = principal else {
        return Ok(());
    };
    match owner {
        Some(owner) if owner == &**caller => Ok(()),
        _ => Err(AuthError::PermissionDenied(account_id.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_comments_and_refuses_junk() {
        let text = "# ops\nalice aaaaaaaaaaaaaaaa  # main\n\n  bob bbbbbbbbbbbbbbbbbbbb\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(&*entries[1].principal, "bob");
        for bad in [
            "alice",
            "alice short",
            "a b c d",
            "a aaaaaaaaaaaaaaaa\nb aaaaaaaaaaaaaaaa",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("aaaa"), "a token is never echoed: {err}");
        }
    }

    #[test]
    fn bearer_tokens_authenticate_their_principal_only() {
        let dir = std::env::temp_dir().join(format!("bank-auth-{}", std::process::id()));
        std::fs::write(&dir, "alice aaaaaaaaaaaaaaaa\nbob bbbbbbbbbbbbbbbb\n").unwrap();
        let auth = Auth::load(&dir).unwrap();
        let ask = |value: &str| {
            let mut md = MetadataMap::new();
            md.insert("authorization", value.parse().unwrap());
            auth.authenticate(&md)
        };
        assert_eq!(ask("Bearer bbbbbbbbbbbbbbbb").unwrap().0.as_ref(), "bob");
        assert_eq!(ask("bearer aaaaaaaaaaaaaaaa").unwrap().0.as_ref(), "alice");
        assert_eq!(ask("Bearer aaaaaaaaaaaaaaab"), Err(AuthError::Unauthenticated));
        assert_eq!(ask("Basic aaaaaaaaaaaaaaaa"), Err(AuthError::Unauthenticated));
        assert_eq!(
            auth.authenticate(&MetadataMap::new()),
            Err(AuthError::Unauthenticated)
        );
        std::fs::write(&dir, "carol cccccccccccccccc\n").unwrap();
        assert_eq!(auth.reload(), Ok(1));
        assert_eq!(ask("Bearer aaaaaaaaaaaaaaaa"), Err(AuthError::Unauthenticated));
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn a_session_survives_reloads_that_keep_its_token_and_no_other() {
        let path = std::env::temp_dir().join(format!("bank-auth-session-{}", std::process::id()));
        std::fs::write(&path, "alice aaaaaaaaaaaaaaaa\nbob bbbbbbbbbbbbbbbb\n").unwrap();
        let auth = Arc::new(Auth::load(&path).unwrap());
        let mut md = MetadataMap::new();
        md.insert("authorization", "Bearer aaaaaaaaaaaaaaaa".parse().unwrap());
        let mut session = auth.session(&md).unwrap();
        assert_eq!(session.principal().0.as_ref(), "alice");
        assert_eq!(session.recheck(), Ok(()), "nothing reloaded");
        std::fs::write(&path, "bob bbbbbbbbbbbbbbbb\nalice aaaaaaaaaaaaaaaa\n").unwrap();
        auth.reload().unwrap();
        assert_eq!(session.recheck(), Ok(()), "the same token, the same principal");
        let mut changed = session.clone();
        std::fs::write(&path, "carol aaaaaaaaaaaaaaaa\n").unwrap();
        auth.reload().unwrap();
        assert_eq!(
            changed.recheck(),
            Err(AuthError::Revoked),
            "now another principal's"
        );
        std::fs::write(&path, "bob bbbbbbbbbbbbbbbb\n").unwrap();
        auth.reload().unwrap();
        assert_eq!(session.recheck(), Err(AuthError::Revoked), "removed");
        let _ = std::fs::remove_file(&path);
    }
}
