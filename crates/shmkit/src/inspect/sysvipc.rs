//! Parsers for `/proc/sysvipc/{shm,sem,msg}`: one header line naming the columns, then
//! one whitespace-separated line per object. Keys are signed decimal; `perms` is octal
//! text and includes `01000` (SHM_DEST, "dest") and `02000` (SHM_LOCKED, "locked").
//!
//! Columns are found by their header name, so a kernel that adds or reorders columns
//! (rss and swap came in 4.x) still parses; a missing required column is an error, a
//! malformed row is skipped.

use std::collections::HashMap;

use crate::error::{Error, ErrorKind, Result};

/// `SHM_DEST` in `perms`: removed, destroyed when the last attachment goes.
pub const MODE_DEST: u32 = 0o1000;
/// `SHM_LOCKED` in `perms`: locked in memory (`SHM_LOCK`).
pub const MODE_LOCKED: u32 = 0o2000;

/// One line of /proc/sysvipc/shm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShmEntry {
    /// The key (0 is IPC_PRIVATE, and the key of a removed segment).
    pub key: i32,
    /// The shmid.
    pub id: i32,
    /// Mode bits including [`MODE_DEST`] and [`MODE_LOCKED`].
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Creator pid.
    pub cpid: i32,
    /// Last shmat/shmdt pid.
    pub lpid: i32,
    /// Attachments (mappings, not processes).
    pub nattch: u64,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Creator uid.
    pub cuid: u32,
    /// Creator gid.
    pub cgid: u32,
    /// Last attach time (seconds since the epoch, 0 = never).
    pub atime: i64,
    /// Last detach time.
    pub dtime: i64,
    /// Last change time.
    pub ctime: i64,
    /// Resident bytes, where the kernel shows them.
    pub rss: Option<u64>,
    /// Swapped bytes, where the kernel shows them.
    pub swap: Option<u64>,
}

/// One line of /proc/sysvipc/sem.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SemEntry {
    /// The key.
    pub key: i32,
    /// The semid.
    pub id: i32,
    /// Mode bits.
    pub mode: u32,
    /// Number of semaphores in the set.
    pub nsems: u64,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Creator uid.
    pub cuid: u32,
    /// Creator gid.
    pub cgid: u32,
    /// Last semop time (0 = never).
    pub otime: i64,
    /// Last change time.
    pub ctime: i64,
}

/// One line of /proc/sysvipc/msg.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MsgEntry {
    /// The key.
    pub key: i32,
    /// The msqid.
    pub id: i32,
    /// Mode bits.
    pub mode: u32,
    /// Bytes queued.
    pub cbytes: u64,
    /// Messages queued.
    pub qnum: u64,
    /// Last msgsnd pid.
    pub lspid: i32,
    /// Last msgrcv pid.
    pub lrpid: i32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Creator uid.
    pub cuid: u32,
    /// Creator gid.
    pub cgid: u32,
    /// Last send time (0 = never).
    pub stime: i64,
    /// Last receive time (0 = never).
    pub rtime: i64,
    /// Last change time.
    pub ctime: i64,
}

/// Where the kernel publishes System V objects.
pub const PROC_SYSVIPC: &str = "/proc/sysvipc";

/// A parsed table: column positions by name, then rows of fields.
struct Table<'a> {
    file: &'a str,
    cols: HashMap<&'a str, usize>,
}

impl<'a> Table<'a> {
    fn new(file: &'a str, header: &'a str) -> Self {
        let cols = header
            .split_whitespace()
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect();
        Table { file, cols }
    }

    fn col(&self, name: &str) -> Result<usize> {
        self.cols.get(name).copied().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "parse",
                self.file,
                format!("no column {name:?} in the header"),
            )
        })
    }
}

fn field<T: std::str::FromStr>(row: &[&str], i: usize) -> Option<T> {
    row.get(i).and_then(|s| s.parse().ok())
}

fn octal(row: &[&str], i: usize) -> Option<u32> {
    row.get(i).and_then(|s| u32::from_str_radix(s, 8).ok())
}

fn split(text: &str, file: &str) -> Result<(String, Vec<String>)> {
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or_else(|| Error::new(ErrorKind::Corrupt, "parse", file, "the file is empty"))?;
    Ok((
        header.to_string(),
        lines
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect(),
    ))
}

/// Parses the text of /proc/sysvipc/shm.
pub fn parse_shm(text: &str) -> Result<Vec<ShmEntry>> {
    let file = "/proc/sysvipc/shm";
    let (header, rows) = split(text, file)?;
    let t = Table::new(file, &header);
    let c = [
        t.col("key")?,
        t.col("shmid")?,
        t.col("perms")?,
        t.col("size")?,
        t.col("cpid")?,
        t.col("lpid")?,
        t.col("nattch")?,
        t.col("uid")?,
        t.col("gid")?,
        t.col("cuid")?,
        t.col("cgid")?,
        t.col("atime")?,
        t.col("dtime")?,
        t.col("ctime")?,
    ];
    let rss = t.col("rss").ok();
    let swap = t.col("swap").ok();
    let mut out = Vec::with_capacity(rows.len());
    for line in &rows {
        let r: Vec<&str> = line.split_whitespace().collect();
        let e = (|| {
            Some(ShmEntry {
                key: field(&r, c[0])?,
                id: field(&r, c[1])?,
                mode: octal(&r, c[2])?,
                size: field(&r, c[3])?,
                cpid: field(&r, c[4])?,
                lpid: field(&r, c[5])?,
                nattch: field(&r, c[6])?,
                uid: field(&r, c[7])?,
                gid: field(&r, c[8])?,
                cuid: field(&r, c[9])?,
                cgid: field(&r, c[10])?,
                atime: field(&r, c[11])?,
                dtime: field(&r, c[12])?,
                ctime: field(&r, c[13])?,
                rss: rss.and_then(|i| field(&r, i)),
                swap: swap.and_then(|i| field(&r, i)),
            })
        })();
        out.extend(e);
    }
    Ok(out)
}

/// Parses the text of /proc/sysvipc/sem.
pub fn parse_sem(text: &str) -> Result<Vec<SemEntry>> {
    let file = "/proc/sysvipc/sem";
    let (header, rows) = split(text, file)?;
    let t = Table::new(file, &header);
    let c = [
        t.col("key")?,
        t.col("semid")?,
        t.col("perms")?,
        t.col("nsems")?,
        t.col("uid")?,
        t.col("gid")?,
        t.col("cuid")?,
        t.col("cgid")?,
        t.col("otime")?,
        t.col("ctime")?,
    ];
    let mut out = Vec::with_capacity(rows.len());
    for line in &rows {
        let r: Vec<&str> = line.split_whitespace().collect();
        let e = (|| {
            Some(SemEntry {
                key: field(&r, c[0])?,
                id: field(&r, c[1])?,
                mode: octal(&r, c[2])?,
                nsems: field(&r, c[3])?,
                uid: field(&r, c[4])?,
                gid: field(&r, c[5])?,
                cuid: field(&r, c[6])?,
                cgid: field(&r, c[7])?,
                otime: field(&r, c[8])?,
                ctime: field(&r, c[9])?,
            })
        })();
        out.extend(e);
    }
    Ok(out)
}

/// Parses the text of /proc/sysvipc/msg.
pub fn parse_msg(text: &str) -> Result<Vec<MsgEntry>> {
    let file = "/proc/sysvipc/msg";
    let (header, rows) = split(text, file)?;
    let t = Table::new(file, &header);
    let c = [
        t.col("key")?,
        t.col("msqid")?,
        t.col("perms")?,
        t.col("cbytes")?,
        t.col("qnum")?,
        t.col("lspid")?,
        t.col("lrpid")?,
        t.col("uid")?,
        t.col("gid")?,
        t.col("cuid")?,
        t.col("cgid")?,
        t.col("stime")?,
        t.col("rtime")?,
        t.col("ctime")?,
    ];
    let mut out = Vec::with_capacity(rows.len());
    for line in &rows {
        let r: Vec<&str> = line.split_whitespace().collect();
        let e = (|| {
            Some(MsgEntry {
                key: field(&r, c[0])?,
                id: field(&r, c[1])?,
                mode: octal(&r, c[2])?,
                cbytes: field(&r, c[3])?,
                qnum: field(&r, c[4])?,
                lspid: field(&r, c[5])?,
                lrpid: field(&r, c[6])?,
                uid: field(&r, c[7])?,
                gid: field(&r, c[8])?,
                cuid: field(&r, c[9])?,
                cgid: field(&r, c[10])?,
                stime: field(&r, c[11])?,
                rtime: field(&r, c[12])?,
                ctime: field(&r, c[13])?,
            })
        })();
        out.extend(e);
    }
    Ok(out)
}

fn read(name: &str) -> Result<String> {
    let path = format!("{PROC_SYSVIPC}/{name}");
    std::fs::read_to_string(&path).map_err(|e| Error::from_io("read", &path, e))
}

/// Reads and parses /proc/sysvipc/shm.
pub fn shm() -> Result<Vec<ShmEntry>> {
    parse_shm(&read("shm")?)
}

/// Reads and parses /proc/sysvipc/sem.
pub fn sem() -> Result<Vec<SemEntry>> {
    parse_sem(&read("sem")?)
}

/// Reads and parses /proc/sysvipc/msg.
pub fn msg() -> Result<Vec<MsgEntry>> {
    parse_msg(&read("msg")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shm_with_negative_key_and_dest_mode() {
        let text = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                    -1163005939          5      1600                  4096   123   456      2  1000  1000  1000  1000 1700000000          0 1700000001                  4096                     0\n";
        let v = parse_shm(text).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].key, -1163005939);
        assert_eq!(v[0].key as u32, 0xbaadf00d);
        assert_eq!(v[0].mode & MODE_DEST, MODE_DEST);
        assert_eq!(v[0].mode & 0o777, 0o600);
        assert_eq!(v[0].nattch, 2);
        assert_eq!(v[0].rss, Some(4096));
    }

    #[test]
    fn skips_malformed_rows_and_needs_columns() {
        let text =
            "key semid perms nsems uid gid cuid cgid otime ctime\n1 2 644 3 0 0 0 0 0 5\ngarbage\n";
        let v = parse_sem(text).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].nsems, 3);
        assert!(parse_sem("key semid\n").is_err());
        assert!(parse_msg("").is_err());
    }
}
