//! Login banners: the text of `/etc/motd`, `/etc/issue` and `/etc/issue.net` (their permissions
//! are in the files facts).

use rampart_proto::v1::Banner;

use super::{CollectResult, FactSource};

const PATHS: [&str; 3] = ["/etc/motd", "/etc/issue", "/etc/issue.net"];
/// Text kept per banner.
const MAX_TEXT: usize = 4096;

pub fn collect(src: &FactSource) -> CollectResult<Vec<Banner>> {
    Ok(PATHS
        .iter()
        .map(|path| match src.read_bytes(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_TEXT)]);
                Banner {
                    path: path.to_string(),
                    exists: true,
                    text: text.into_owned(),
                }
            }
            Err(_) => Banner {
                path: path.to_string(),
                ..Default::default()
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn banner_text_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "etc/issue", "Debian GNU/Linux 12 \\n \\l\n");
        write(dir.path(), "etc/motd", &"x".repeat(10_000));
        let b = collect(&FactSource::fixture(dir.path())).unwrap();
        assert_eq!(b[0].text.len(), MAX_TEXT);
        assert_eq!(b[1].text, "Debian GNU/Linux 12 \\n \\l\n");
        assert!(!b[2].exists);
    }
}
