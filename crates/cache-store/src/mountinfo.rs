//! `/proc/self/mountinfo`: what `statfs` does not say about a mount — the FUSE daemon
//! behind a `fuse` magic number, the name of a type it has no number for, and the mount
//! options that decide whether locks reach other machines (Lustre's `flock`,
//! `localflock`, `noflock`; NFS's `nolock`, `local_lock=`).

/// One mount, as far as locking cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: String,
    /// The filesystem type as the kernel names it (`nfs4`, `lustre`, `fuse.sshfs`).
    pub fstype: String,
    /// What is mounted (`server:/export`, `/dev/sda1`).
    pub source: String,
    /// The per-mount and per-superblock options, comma-separated.
    pub options: String,
}

impl Mount {
    /// Whether option `name` (or `name=…`) is set.
    pub fn has_option(&self, name: &str) -> bool {
        self.option(name).is_some()
    }

    /// The value of option `name` (`""` for a flag).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.split(',').find_map(|o| match o.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if o == name => Some(""),
            _ => None,
        })
    }

    /// What the mount options say about locks across machines, when they limit them:
    /// `Some(note)` where even `fcntl` locks stay on this machine or fail.
    pub fn lock_limit(&self) -> Option<String> {
        let fs = self.fstype.as_str();
        if fs == "lustre" {
            if self.has_option("localflock") {
                return Some("mounted with `localflock`: locks exclude on this node only".to_owned());
            }
            if self.has_option("noflock") || !self.has_option("flock") {
                return Some("mounted without `flock`: lock calls fail here".to_owned());
            }
        }
        if fs.starts_with("nfs") {
            if self.has_option("nolock") {
                return Some("mounted with `nolock`: locks exclude on this machine only".to_owned());
            }
            if let Some(local @ ("all" | "posix")) = self.option("local_lock") {
                return Some(format!("mounted with `local_lock={local}`: fcntl locks exclude on this machine only"));
            }
        }
        None
    }
}

/// Parses one mountinfo line into its device (major, minor) and mount:
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
pub(crate) fn parse_line(line: &str) -> Option<((u64, u64), Mount)> {
    let (before, after) = line.split_once(" - ")?;
    let mut f = before.split(' ');
    let (_id, _parent, dev, _root, mount_point, mount_opts) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let (major, minor) = dev.split_once(':')?;
    let mut a = after.split(' ');
    let (fstype, source, super_opts) = (a.next()?, a.next()?, a.next().unwrap_or(""));
    let options = if super_opts.is_empty() { mount_opts.to_owned() } else { format!("{mount_opts},{super_opts}") };
    Some((
        (major.parse().ok()?, minor.parse().ok()?),
        Mount { mount_point: unescape(mount_point), fstype: fstype.to_owned(), source: unescape(source), options },
    ))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        if let Some(c) = code {
            out.push(char::from(c));
            rest = &rest[i + 4..];
        } else {
            out.push('\\');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// The mount of device `dev` in `table` (the last one listed: later mounts hide earlier).
pub(crate) fn find(table: &str, dev: (u64, u64)) -> Option<Mount> {
    table.lines().filter_map(parse_line).filter(|(d, _)| *d == dev).map(|(_, m)| m).next_back()
}

/// The mount of device `dev`, from this process's mount table (Linux).
pub(crate) fn of_device(dev: (u64, u64)) -> Option<Mount> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    find(&table, dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Linux prints them for each family (recorded on real systems).
    const TABLE: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
25 22 0:21 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,inode64
40 22 0:45 / /shared rw,relatime shared:20 - nfs4 filer:/export rw,vers=4.2,rsize=1048576,hard,proto=tcp,sec=sys,local_lock=none,addr=10.0.0.5
41 22 0:46 / /old rw,relatime shared:21 - nfs filer:/old rw,vers=3,nolock,proto=tcp,local_lock=all
42 22 0:47 / /lustre rw,relatime shared:22 - lustre 10.0.0.1@o2ib:/scratch rw,flock,lazystatfs
43 22 0:48 / /lustre2 rw,relatime shared:23 - lustre 10.0.0.1@o2ib:/home rw,localflock,lazystatfs
44 22 0:49 / /gpfs rw,relatime shared:24 - gpfs gpfs0 rw
45 22 0:50 / /ceph rw,relatime shared:25 - ceph 10.0.0.2:6789:/ rw,name=admin,acl
46 22 0:51 / /home/u/remote\\040dir rw,nosuid,nodev,relatime shared:26 - fuse.sshfs u@host:/data rw,user_id=1000,group_id=1000
47 22 0:52 / /smb rw,relatime shared:27 - cifs //srv/share rw,vers=3.1.1,cache=strict
48 22 0:53 / /var/lib/docker/overlay2/x/merged rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
49 22 259:3 / /data rw,relatime shared:28 - xfs /dev/nvme0n1p3 rw,attr2,inode64
50 22 0:54 / /pool rw,relatime shared:29 - zfs tank/pool rw,xattr,posixacl
51 22 0:55 / /b rw,relatime shared:30 - btrfs /dev/sdb rw,space_cache=v2,subvolid=5,subvol=/
";

    #[test]
    fn each_family_is_found_by_its_device_with_the_options_that_matter_for_locks() {
        let m = |major, minor| find(TABLE, (major, minor)).unwrap();
        assert_eq!((m(259, 2).fstype.as_str(), m(259, 2).mount_point.as_str()), ("ext4", "/"));
        assert_eq!(m(0, 21).fstype, "tmpfs");
        let nfs4 = m(0, 45);
        assert_eq!((nfs4.fstype.as_str(), nfs4.option("vers")), ("nfs4", Some("4.2")));
        assert_eq!(nfs4.lock_limit(), None, "NFSv4 locks are coherent");
        assert!(m(0, 46).lock_limit().unwrap().contains("nolock"));
        assert_eq!(m(0, 47).lock_limit(), None, "Lustre with flock");
        assert!(m(0, 48).lock_limit().unwrap().contains("localflock"));
        assert_eq!(m(0, 49).fstype, "gpfs");
        assert_eq!(m(0, 50).fstype, "ceph");
        let sshfs = m(0, 51);
        assert_eq!((sshfs.fstype.as_str(), sshfs.mount_point.as_str()), ("fuse.sshfs", "/home/u/remote dir"));
        assert_eq!(m(0, 52).fstype, "cifs");
        assert_eq!(m(0, 53).fstype, "overlay");
        assert_eq!(m(259, 3).fstype, "xfs");
        assert_eq!(m(0, 54).fstype, "zfs");
        assert_eq!(m(0, 55).fstype, "btrfs");
        assert!(m(0, 55).has_option("space_cache") && !m(0, 55).has_option("space"));
        assert_eq!(find(TABLE, (9, 9)), None);
        assert_eq!(parse_line("garbage"), None);
    }

    #[test]
    fn a_later_mount_on_the_same_device_wins() {
        let t = "1 0 0:9 / /a rw - tmpfs t rw\n2 0 0:9 / /b rw - tmpfs t rw,size=1m\n";
        assert_eq!(find(t, (0, 9)).unwrap().mount_point, "/b");
    }

    #[test]
    fn the_machine_mount_table_names_the_root_filesystem() {
        use std::os::unix::fs::MetadataExt;
        let dev = rustix::fs::Dev::from(std::fs::metadata("/").unwrap().dev());
        let root = of_device((u64::from(rustix::fs::major(dev)), u64::from(rustix::fs::minor(dev))));
        // Containers see their own table; either way `/` is in it.
        assert!(root.is_some_and(|m| !m.fstype.is_empty()), "`/` is in /proc/self/mountinfo");
    }
}
