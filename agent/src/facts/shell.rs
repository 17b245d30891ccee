//! Login shells (`/etc/shells`) and the `umask` and `TMOUT` settings of the system-wide shell
//! start-up files (`/etc/profile`, `/etc/profile.d/*.sh`, `/etc/bash.bashrc`, `/etc/bashrc`).
//! `readonly TMOUT` and `export TMOUT` count wherever they are in the same file.

use rampart_proto::v1::{ShellFacts, ShellSetting};

use super::{CollectResult, FactSource, conf};

fn settings(file: &str, text: &str) -> Vec<ShellSetting> {
    let mut out: Vec<ShellSetting> = Vec::new();
    let (mut readonly, mut exported) = (false, false);
    for line in conf::lines(text) {
        for stmt in line.split(';').map(str::trim) {
            let words: Vec<&str> = stmt.split_whitespace().collect();
            let (mut ro, mut ex) = (false, false);
            let mut rest = &words[..];
            while let Some((first, tail)) = rest.split_first() {
                match *first {
                    "readonly" => ro = true,
                    "export" => ex = true,
                    "declare" | "typeset" => {}
                    flags if flags.starts_with('-') => {
                        ro |= flags.contains('r');
                        ex |= flags.contains('x');
                    }
                    _ => break,
                }
                rest = tail;
            }
            match rest {
                ["umask", value, ..] => out.push(ShellSetting {
                    file: file.to_string(),
                    name: "umask".into(),
                    value: value.to_string(),
                    ..Default::default()
                }),
                [assign, ..] if assign.starts_with("TMOUT") => {
                    readonly |= ro;
                    exported |= ex;
                    if let Some(v) = assign.strip_prefix("TMOUT=") {
                        out.push(ShellSetting {
                            file: file.to_string(),
                            name: "TMOUT".into(),
                            value: v.trim_matches(['"', '\'']).to_string(),
                            ..Default::default()
                        });
                    }
                }
                _ => {}
            }
        }
    }
    for s in out.iter_mut().filter(|s| s.name == "TMOUT") {
        s.readonly = readonly;
        s.exported = exported;
    }
    out
}

pub fn collect(src: &FactSource) -> CollectResult<ShellFacts> {
    let mut facts = ShellFacts {
        shells: src
            .read_optional("/etc/shells")
            .ok()
            .flatten()
            .map(|t| conf::lines(&t).map(String::from).collect())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut files = vec!["/etc/profile".to_string()];
    files.extend(
        src.list("/etc/profile.d")
            .into_iter()
            .filter(|f| f.ends_with(".sh")),
    );
    files.extend(["/etc/bash.bashrc".to_string(), "/etc/bashrc".to_string()]);
    for f in files {
        if let Ok(Some(text)) = src.read_optional(&f) {
            facts.settings.extend(settings(&f, &text));
        }
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn umask_and_tmout_settings() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "etc/shells", "# valid shells\n/bin/sh\n/bin/bash\n");
        write(r, "etc/profile", "if [ x ]; then\n  umask 022\nfi\n");
        write(
            r,
            "etc/profile.d/50-tmout.sh",
            "TMOUT=900\nreadonly TMOUT\nexport TMOUT\n",
        );
        write(
            r,
            "etc/profile.d/60-umask.sh",
            "umask 027 # CIS\ndeclare -xr TMOUT=600\n",
        );
        write(r, "etc/profile.d/readme.txt", "umask 000\n");
        let s = collect(&FactSource::fixture(r)).unwrap();
        assert_eq!(s.shells, ["/bin/sh", "/bin/bash"]);
        let got: Vec<(&str, &str, &str, bool, bool)> = s
            .settings
            .iter()
            .map(|s| {
                (
                    s.file.as_str(),
                    s.name.as_str(),
                    s.value.as_str(),
                    s.readonly,
                    s.exported,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/etc/profile", "umask", "022", false, false),
                ("/etc/profile.d/50-tmout.sh", "TMOUT", "900", true, true),
                ("/etc/profile.d/60-umask.sh", "umask", "027", false, false),
                ("/etc/profile.d/60-umask.sh", "TMOUT", "600", true, true),
            ]
        );
    }
}
