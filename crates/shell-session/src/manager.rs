//! Many sessions under short ids, with a cap and clean-up.

use crate::error::SessionError;
use crate::options::ShellSessionOptions;
use crate::session::{InterruptHandle, ShellSession, Step};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::task::JoinSet;

/// How many fresh ids `new_shell` tries before giving up on a collision.
const ID_ATTEMPTS: usize = 100;

/// Public facts about a registered session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellSessionInfo {
    /// The session's 6-digit id.
    pub session_id: String,
    /// The caller's short description, if any.
    pub desc: Option<String>,
}

/// Keeps sessions under 6-digit ids for callers that come back to them
/// across calls (tool loops of agent runtimes, for example).
///
/// Shared by `&self`: put it in an `Arc` and use it from many tasks.
/// Different sessions take steps concurrently; the manager's own lock is
/// held only for bookkeeping, never across an `.await`. A session is checked
/// out of the registry for the length of a step, so a second concurrent
/// step on the same session fails with [`SessionError::Busy`], while
/// [`interrupt`](Self::interrupt), [`clear`](Self::clear) and
/// [`close`](Self::close) reach it at once.
pub struct ShellSessionManager {
    max_sessions: usize,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    sessions: HashMap<String, Entry>,
    closed: bool,
    /// Stamps entries so a step checking a session back in can tell its own
    /// entry from a newer one that reused the id.
    next_stamp: u64,
}

struct Entry {
    stamp: u64,
    desc: Option<String>,
    interrupt: InterruptHandle,
    slot: Slot,
}

enum Slot {
    /// `new_shell` is starting the command.
    Starting,
    /// Registered and free.
    Idle(Box<ShellSession>),
    /// A step is running; the session is with that step.
    Busy,
}

impl Registry {
    /// Removes sessions whose command has exited; the caller closes them.
    fn take_exited(&mut self) -> Vec<ShellSession> {
        let exited: Vec<String> = self
            .sessions
            .iter_mut()
            .filter_map(|(id, entry)| match &mut entry.slot {
                Slot::Idle(session) => session.has_exited().then(|| id.clone()),
                _ => None,
            })
            .collect();
        exited
            .into_iter()
            .filter_map(|id| match self.sessions.remove(&id)?.slot {
                Slot::Idle(session) => Some(*session),
                _ => None,
            })
            .collect()
    }

    /// Removes every entry; returns the free sessions for the caller to
    /// close and interrupts the busy ones through their handles.
    fn take_all(&mut self) -> Vec<ShellSession> {
        self.sessions
            .drain()
            .filter_map(|(_, entry)| match entry.slot {
                Slot::Idle(session) => Some(*session),
                Slot::Busy | Slot::Starting => {
                    entry.interrupt.interrupt();
                    None
                }
            })
            .collect()
    }
}

impl ShellSessionManager {
    /// A manager that holds at most `max_sessions` sessions at once.
    pub fn new(max_sessions: usize) -> Self {
        ShellSessionManager {
            max_sessions,
            registry: Mutex::new(Registry::default()),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // The registry stays consistent across a panic in another thread
        // (every update is a single map operation), so poisoning is ignored.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_registry(&self) -> Result<MutexGuard<'_, Registry>, SessionError> {
        let registry = self.registry();
        if registry.closed {
            Err(SessionError::ManagerClosed)
        } else {
            Ok(registry)
        }
    }

    /// Creates, starts and registers a session for `command`; returns its id.
    ///
    /// Prunes exited sessions first; fails with
    /// [`SessionError::TooManySessions`] when the cap is reached.
    pub async fn new_shell(
        &self,
        command: impl Into<String>,
        options: ShellSessionOptions,
        desc: Option<String>,
    ) -> Result<String, SessionError> {
        let mut session = ShellSession::new(command, options);
        session.desc.clone_from(&desc);
        let (reserved, exited) = self.reserve(&mut session, desc);
        close_all(exited).await;
        let stamp = reserved?;

        let id = session.session_id().to_owned();
        let started = session.start().await;
        match self.register_started(&id, stamp, started, session) {
            Ok(()) => Ok(id),
            Err((err, Some(mut session))) => {
                session.interrupt().await;
                Err(err)
            }
            Err((err, None)) => Err(err),
        }
    }

    /// Reserves a slot (counted against the cap) under a free id for
    /// `session`. Also hands back pruned sessions for the caller to close.
    fn reserve(
        &self,
        session: &mut ShellSession,
        desc: Option<String>,
    ) -> (Result<u64, SessionError>, Vec<ShellSession>) {
        let mut registry = match self.open_registry() {
            Ok(registry) => registry,
            Err(err) => return (Err(err), Vec::new()),
        };
        let exited = registry.take_exited();
        let active = registry.sessions.len();
        if active >= self.max_sessions {
            let err = SessionError::TooManySessions {
                active,
                max: self.max_sessions,
            };
            return (Err(err), exited);
        }
        let mut attempts = 0;
        while registry.sessions.contains_key(session.session_id()) {
            attempts += 1;
            if attempts >= ID_ATTEMPTS {
                let err = std::io::Error::other("could not allocate a unique session id");
                return (Err(SessionError::Io(err)), exited);
            }
            session.renew_session_id();
        }
        let stamp = registry.next_stamp;
        registry.next_stamp += 1;
        registry.sessions.insert(
            session.session_id().to_owned(),
            Entry {
                stamp,
                desc,
                interrupt: session.interrupt_handle(),
                slot: Slot::Starting,
            },
        );
        (Ok(stamp), exited)
    }

    /// Fills the reserved slot with the started session. If the slot is gone
    /// (interrupted, cleared or closed while starting), hands the session
    /// back to be closed.
    fn register_started(
        &self,
        id: &str,
        stamp: u64,
        started: Result<(), SessionError>,
        session: ShellSession,
    ) -> Result<(), (SessionError, Option<Box<ShellSession>>)> {
        let mut registry = self.registry();
        let closed = registry.closed;
        let ours = registry
            .sessions
            .get_mut(id)
            .filter(|entry| entry.stamp == stamp);
        match (started, ours) {
            (Ok(()), Some(entry)) => {
                entry.slot = Slot::Idle(Box::new(session));
                Ok(())
            }
            (Ok(()), None) => {
                let err = if closed {
                    SessionError::ManagerClosed
                } else {
                    SessionError::Closed
                };
                Err((err, Some(Box::new(session))))
            }
            (Err(err), ours) => {
                if ours.is_some() {
                    registry.sessions.remove(id);
                }
                Err((err, None))
            }
        }
    }

    /// Takes the next step of session `id` (see [`ShellSession::next`]).
    /// A session whose step saw its exit is unregistered.
    pub async fn next(
        &self,
        id: &str,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Step, SessionError> {
        let (mut session, stamp) = self.check_out(id)?;
        let mut checkout = Checkout {
            manager: self,
            id,
            stamp,
            returned: false,
        };
        let result = session.next(stdin, timeout).await;
        checkout.check_in(session).await;
        result
    }

    fn check_out(&self, id: &str) -> Result<(Box<ShellSession>, u64), SessionError> {
        let mut registry = self.open_registry()?;
        let entry = registry
            .sessions
            .get_mut(id)
            .ok_or_else(|| SessionError::UnknownSession(id.to_owned()))?;
        match std::mem::replace(&mut entry.slot, Slot::Busy) {
            Slot::Idle(session) => Ok((session, entry.stamp)),
            other => {
                entry.slot = other;
                Err(SessionError::Busy(id.to_owned()))
            }
        }
    }

    /// Interrupts session `id` and unregisters it. A session in the middle
    /// of a step is interrupted through its handle; that step ends at once.
    pub async fn interrupt(&self, id: &str) -> Result<(), SessionError> {
        let entry = self
            .open_registry()?
            .sessions
            .remove(id)
            .ok_or_else(|| SessionError::UnknownSession(id.to_owned()))?;
        match entry.slot {
            Slot::Idle(mut session) => session.interrupt().await,
            Slot::Busy | Slot::Starting => entry.interrupt.interrupt(),
        }
        Ok(())
    }

    /// Prunes exited sessions and lists the rest, oldest first.
    pub async fn list_sessions(&self) -> Result<Vec<ShellSessionInfo>, SessionError> {
        let (mut listed, exited) = self.snapshot()?;
        close_all(exited).await;
        listed.sort_by_key(|(stamp, _)| *stamp);
        Ok(listed.into_iter().map(|(_, info)| info).collect())
    }

    /// Prunes, then lists (stamp, info) of what is left; hands back pruned
    /// sessions for the caller to close.
    #[allow(clippy::type_complexity)]
    fn snapshot(&self) -> Result<(Vec<(u64, ShellSessionInfo)>, Vec<ShellSession>), SessionError> {
        let mut registry = self.open_registry()?;
        let exited = registry.take_exited();
        let listed = registry
            .sessions
            .iter()
            .map(|(id, entry)| {
                let info = ShellSessionInfo {
                    session_id: id.clone(),
                    desc: entry.desc.clone(),
                };
                (entry.stamp, info)
            })
            .collect();
        Ok((listed, exited))
    }

    /// Interrupts and unregisters every session; the manager stays open.
    pub async fn clear(&self) -> Result<(), SessionError> {
        let sessions = self.open_registry()?.take_all();
        close_all(sessions).await;
        Ok(())
    }

    /// Closes the manager: interrupts every session and refuses all later
    /// calls with [`SessionError::ManagerClosed`]. Idempotent.
    pub async fn close(&self) {
        let sessions = {
            let mut registry = self.registry();
            let already_closed = std::mem::replace(&mut registry.closed, true);
            if already_closed {
                Vec::new()
            } else {
                registry.take_all()
            }
        };
        close_all(sessions).await;
    }
}

/// Interrupts sessions concurrently, so one slow to die does not hold up
/// the others.
async fn close_all(sessions: Vec<ShellSession>) {
    if sessions.is_empty() {
        return;
    }
    let mut closing = JoinSet::new();
    for mut session in sessions {
        closing.spawn(async move { session.interrupt().await });
    }
    while closing.join_next().await.is_some() {}
}

/// A session checked out of the registry for one step. If the step's
/// future is dropped half-way, the entry is removed (the session itself is
/// dropped with the future, which kills its process group).
struct Checkout<'a> {
    manager: &'a ShellSessionManager,
    id: &'a str,
    stamp: u64,
    returned: bool,
}

impl Checkout<'_> {
    async fn check_in(&mut self, session: Box<ShellSession>) {
        self.returned = true;
        let orphaned = self.put_back(session);
        if let Some(mut session) = orphaned {
            session.interrupt().await;
        }
    }
}

impl Checkout<'_> {
    /// Returns the session to its entry, or removes the entry if the session
    /// closed. Hands the session back if its entry is gone (unregistered
    /// during the step by interrupt, clear or close).
    fn put_back(&self, session: Box<ShellSession>) -> Option<Box<ShellSession>> {
        let mut registry = self.manager.registry();
        let ours = registry
            .sessions
            .get_mut(self.id)
            .filter(|entry| entry.stamp == self.stamp);
        match ours {
            Some(_) if session.is_closed() => {
                registry.sessions.remove(self.id);
                None
            }
            Some(entry) => {
                entry.slot = Slot::Idle(session);
                None
            }
            None => Some(session),
        }
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if self.returned {
            return;
        }
        let mut registry = self.manager.registry();
        if registry
            .sessions
            .get(self.id)
            .is_some_and(|entry| entry.stamp == self.stamp)
        {
            registry.sessions.remove(self.id);
        }
    }
}
