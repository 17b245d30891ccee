//! Mounted filesystems and their options, from `/proc/mounts` (or `/proc/self/mounts`).

use rampart_proto::v1::Mount;

use super::{CollectResult, FactSource, io_err};

/// `/proc/mounts` escapes spaces and friends as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn collect(src: &FactSource) -> CollectResult<Vec<Mount>> {
    let text = match src
        .read_optional("/proc/mounts")
        .map_err(io_err("/proc/mounts"))?
    {
        Some(t) => t,
        None => src
            .read_optional("/proc/self/mounts")
            .map_err(io_err("/proc/self/mounts"))?
            .unwrap_or_default(),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| Mount {
                device: unescape(f[0]),
                mount_point: unescape(f[1]),
                fstype: f[2].into(),
                options: f[3].split(',').map(str::to_string).collect(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn mounts_with_options() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "proc/mounts",
            "/dev/sda1 / ext4 rw,relatime 0 0\ntmpfs /tmp tmpfs rw,nosuid,nodev,noexec 0 0\n/dev/sdb1 /mnt/my\\040disk ext4 rw 0 0\n",
        );
        let m = collect(&FactSource::fixture(dir.path())).unwrap();
        assert_eq!(m[1].mount_point, "/tmp");
        assert_eq!(m[1].options, ["rw", "nosuid", "nodev", "noexec"]);
        assert_eq!(m[2].mount_point, "/mnt/my disk");
    }
}
