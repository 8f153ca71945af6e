//! Removing objects: `IPC_RMID` for System V objects by id, unlink for POSIX objects,
//! named semaphores and message queues by name. An object that vanished since it was
//! listed gives an error of kind [`ErrorKind::NotFound`] naming it; nothing else is
//! touched; a POSIX name that now belongs to a different file (removed and created
//! again since the listing) is left alone. memfds have no name to remove: they go when
//! their last user closes them.

use super::objects::{Kind, Object};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::ipcinfo::{self, SysvKind};

/// Removes `obj` (as listed). `shm_dir` is the directory POSIX objects live in
/// (normally `/dev/shm`).
pub fn remove(obj: &Object, shm_dir: &str) -> Result<()> {
    let label = obj.label();
    let gone = |e: Error| -> Error {
        match e.kind() {
            ErrorKind::NotFound | ErrorKind::InvalidInput | ErrorKind::Removed => Error::new(
                ErrorKind::NotFound,
                e.op().to_string(),
                &label,
                "it no longer exists (removed since it was listed)",
            ),
            _ => e.with_object(&label),
        }
    };
    let name = || {
        obj.name
            .as_deref()
            .map(|n| n.trim_start_matches('/'))
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| Error::invalid("remove", &label, "the object has no usable name"))
    };
    match obj.kind {
        Kind::SysvShm => remove_sysv(SysvKind::Shm, obj).map_err(gone),
        Kind::SysvSem => remove_sysv(SysvKind::Sem, obj).map_err(gone),
        Kind::SysvMsg => remove_sysv(SysvKind::Msg, obj).map_err(gone),
        Kind::PosixShm | Kind::PosixSem => {
            if obj.status.unlinked {
                return Err(Error::invalid(
                    "remove",
                    &label,
                    "already unlinked; it goes when its last user unmaps or closes it",
                ));
            }
            let n = name()?;
            let file = if obj.kind == Kind::PosixSem {
                format!("sem.{n}")
            } else {
                n.to_string()
            };
            let path = format!("{shm_dir}/{file}");
            // The name may have been removed and created again since the listing:
            // unlink only the object that was listed.
            if let Some(ino) = obj.inode {
                use std::os::unix::fs::MetadataExt;
                match std::fs::symlink_metadata(&path) {
                    Ok(md) if md.ino() != ino => {
                        return Err(Error::new(
                            ErrorKind::Other,
                            "unlink",
                            &label,
                            "another object took this name since it was listed; not removed",
                        ))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(gone(Error::from_io("unlink", &label, e))),
                }
            }
            std::fs::remove_file(&path).map_err(|e| gone(Error::from_io("unlink", &label, e)))
        }
        Kind::PosixMq => ipcinfo::mq_unlink(name()?).map_err(gone),
        Kind::Memfd => Err(Error::new(
            ErrorKind::Unsupported,
            "remove",
            &label,
            "a memfd has no name to remove; it goes when its holders close it",
        )),
    }
}

fn remove_sysv(kind: SysvKind, obj: &Object) -> Result<()> {
    let id = obj
        .id
        .ok_or_else(|| Error::invalid("remove", obj.label(), "no id"))?;
    // The listed object may be gone and its id reused since: remove only the object
    // that was listed (same creator pid for a segment, same key unless it was removed
    // meanwhile). A stat this user may not do leaves the decision to IPC_RMID.
    let now = match kind {
        SysvKind::Shm => Some(
            crate::sys::sysv::stat(id)
                .map(|ds| (ds.shm_perm.__key, Some(ds.shm_cpid)))
                .map_err(|e| e.with_object(obj.label())),
        ),
        SysvKind::Sem => Some(crate::sys::sem::stat(id, &obj.label()).map(|st| (st.key, None))),
        SysvKind::Msg => None,
    };
    match now {
        Some(Ok((key, cpid))) => {
            let other_creator = matches!((cpid, obj.creator_pid), (Some(a), Some(b)) if a != b);
            let other_key = obj
                .key
                .is_some_and(|k| k != key && key != libc::IPC_PRIVATE);
            if other_creator || other_key {
                return Err(Error::new(
                    ErrorKind::Other,
                    "IPC_RMID",
                    obj.label(),
                    "another object has this id since it was listed; not removed",
                ));
            }
        }
        Some(Err(e))
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::InvalidInput | ErrorKind::Removed
            ) =>
        {
            return Err(e)
        }
        _ => {}
    }
    ipcinfo::remove(kind, id)
}
