//! User and group names through the C library's name service (`getpwnam_r` and
//! friends), so that `/etc/passwd`, LDAP or systemd users all resolve as `id` does.

use std::ffi::{CStr, CString};

/// Calls a reentrant lookup with a growing buffer; `f` returns the C error code and sets
/// its result pointer non-null when found.
fn lookup<T>(mut f: impl FnMut(&mut Vec<libc::c_char>) -> (i32, Option<T>)) -> Option<T> {
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        let (rc, found) = f(&mut buf);
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            let n = buf.len() * 4;
            buf.resize(n, 0);
            continue;
        }
        return if rc == 0 { found } else { None };
    }
}

/// The uid of user `name`, if it exists.
///
/// ```
/// assert_eq!(shmkit::sys::users::uid_by_name("root"), Some(0));
/// ```
pub fn uid_by_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    lookup(|buf| {
        // SAFETY: passwd is a plain C struct; all-zero is a valid initial value.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` has `buf.len()` bytes.
        let rc =
            unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
        (rc, (!out.is_null()).then_some(pw.pw_uid))
    })
}

/// The gid of group `name`, if it exists.
///
/// ```
/// assert_eq!(shmkit::sys::users::gid_by_name("root"), Some(0));
/// ```
pub fn gid_by_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    lookup(|buf| {
        // SAFETY: group is a plain C struct; all-zero is a valid initial value.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` has `buf.len()` bytes.
        let rc =
            unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
        (rc, (!out.is_null()).then_some(gr.gr_gid))
    })
}

/// The name of user `uid`, if it has one.
///
/// ```
/// assert_eq!(shmkit::sys::users::user_name(0).as_deref(), Some("root"));
/// ```
pub fn user_name(uid: u32) -> Option<String> {
    lookup(|buf| {
        // SAFETY: passwd is a plain C struct; all-zero is a valid initial value.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` has `buf.len()` bytes.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
        let name = (!out.is_null()).then(|| {
            // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
            unsafe { CStr::from_ptr(pw.pw_name) }
                .to_string_lossy()
                .into_owned()
        });
        (rc, name)
    })
}

/// The name of group `gid`, if it has one.
///
/// ```
/// assert_eq!(shmkit::sys::users::group_name(0).as_deref(), Some("root"));
/// ```
pub fn group_name(gid: u32) -> Option<String> {
    lookup(|buf| {
        // SAFETY: group is a plain C struct; all-zero is a valid initial value.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` has `buf.len()` bytes.
        let rc = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
        let name = (!out.is_null()).then(|| {
            // SAFETY: on success gr_name points to a NUL-terminated string inside `buf`.
            unsafe { CStr::from_ptr(gr.gr_name) }
                .to_string_lossy()
                .into_owned()
        });
        (rc, name)
    })
}
