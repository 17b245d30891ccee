//! `/etc/login.defs` (password ageing, hashing, umask) and the defaults `useradd` applies to new
//! accounts (`/etc/default/useradd`, e.g. `INACTIVE`).

use rampart_proto::v1::LoginDefs;

use super::{CollectResult, FactSource, conf};

pub fn collect(src: &FactSource) -> CollectResult<LoginDefs> {
    let mut d = LoginDefs::default();
    d.present = conf::settings_of(src, "/etc/login.defs", &mut d.settings);
    conf::settings_of(src, "/etc/default/useradd", &mut d.useradd);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn login_defs_and_useradd_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        assert!(!collect(&FactSource::fixture(r)).unwrap().present);
        write(
            r,
            "etc/login.defs",
            "# ageing\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS 0\nENCRYPT_METHOD SHA512\nUMASK\t\t022\n",
        );
        write(r, "etc/default/useradd", "SHELL=/bin/sh\nINACTIVE=30\n");
        let d = collect(&FactSource::fixture(r)).unwrap();
        assert!(d.present);
        assert_eq!(d.settings["PASS_MAX_DAYS"], "99999");
        assert_eq!(d.settings["ENCRYPT_METHOD"], "SHA512");
        assert_eq!(d.settings["UMASK"], "022");
        assert_eq!(d.useradd["INACTIVE"], "30");
    }
}
