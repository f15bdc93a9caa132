//! The unprivileged account the gateway serves as (`[gateway] user` and `group`): started as
//! root, it binds its ports and opens its certificates and store, then gives root up for good,
//! so a flaw in the code that talks to the network cannot act as root.

use anyhow::{bail, Context, Result};
use nix::unistd::{geteuid, getgid, getgroups, getuid, setgid, setgroups, setuid, Gid, Uid};
use store::StoreAccess;

/// `[gateway] user` and `group`, resolved to ids when the config is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: Uid,
    /// `[gateway] group` when set, else the user's primary group.
    pub gid: Gid,
    /// Whether `[gateway] group` was set: its members may then read the session store.
    pub group_readable: bool,
}

impl RunAs {
    /// The store's files belong to this account; the group may read them when configured.
    pub fn store_access(&self) -> StoreAccess {
        StoreAccess {
            owner: Some((self.uid.as_raw(), self.gid.as_raw())),
            group_readable: self.group_readable,
        }
    }

    /// Becomes this account: supplementary groups, group, then user (in that order: without
    /// root the groups could no longer change). Started as this user already, nothing changes;
    /// started as anyone else but root, it cannot switch and says so.
    pub fn enter(&self) -> Result<()> {
        let euid = geteuid();
        if euid == self.uid {
            return Ok(());
        }
        if !euid.is_root() {
            bail!(
                "gateway.user is \"{}\" (uid {}) but mailtls runs as uid {euid}, which cannot \
                 switch users; start it as root or as {}",
                self.user,
                self.uid,
                self.user
            );
        }
        setgroups(&[self.gid]).context("cannot set the supplementary groups")?;
        setgid(self.gid).with_context(|| format!("cannot switch to group id {}", self.gid))?;
        setuid(self.uid).with_context(|| format!("cannot switch to user {}", self.user))?;
        // setuid as root sets the real, effective and saved ids alike, so this must fail; if it
        // did not, root could be taken back and the drop would be for show.
        if setuid(Uid::from_raw(0)).is_ok() {
            bail!("could take root back after switching to {}", self.user);
        }
        let (uid, gid, groups) = (getuid(), getgid(), getgroups().unwrap_or_default());
        if uid != self.uid || gid != self.gid || groups != [self.gid] {
            bail!(
                "after switching to {} the process runs as uid {uid}, gid {gid}, groups {groups:?}",
                self.user
            );
        }
        Ok(())
    }
}

/// Whether the process runs as root: the only case in which it can and should drop.
pub fn started_as_root() -> bool {
    geteuid().is_root()
}
