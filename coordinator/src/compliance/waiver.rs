//! Waivers: "this check fails here, we accept it, because …, until …". A sweep turns a `fail` or
//! `error` that an active waiver covers into `waived`, keeping the waiver beside the result; a
//! pass stays a pass. A waived result never trips `--fail-on` and is left out of scores, and from
//! the waiver's expiry (or removal) on the failure counts again: in the next sweep, and at once in
//! the status computed from earlier ones.

use std::collections::HashSet;

use rampart_common::labels::{Labels, Selector};
use rampart_proto::v1::Waiver;
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, WaiverRecord};

/// The status a sweep gives a result an active waiver covers.
pub const WAIVED: &str = "waived";

/// A waiver as kept with a result it waived: the waiver then, and the status it replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedWaiver {
    #[serde(flatten)]
    pub waiver: WaiverRecord,
    /// "fail" or "error".
    pub was: String,
}

/// The waivers in force for one sweep: active at its start, for its pack.
#[derive(Debug, Default)]
pub struct ActiveWaivers(Vec<(WaiverRecord, Selector)>);

impl ActiveWaivers {
    /// Reads the waivers active at `now` that cover `pack`.
    pub async fn load(store: &Store, pack: &str, now: i64) -> Result<Self, StoreError> {
        Ok(Self::from_records(store.waivers().await?, pack, now))
    }

    pub fn from_records(records: Vec<WaiverRecord>, pack: &str, now: i64) -> Self {
        let mut list: Vec<(WaiverRecord, Selector)> = records
            .into_iter()
            .filter(|w| w.active_at(now) && (w.pack.is_empty() || w.pack == pack))
            .filter_map(|w| match Selector::parse(&w.selector) {
                Ok(s) => Some((w, s)),
                Err(e) => {
                    // Selectors are checked when a waiver is added; one that no longer parses
                    // waives nothing rather than everything.
                    tracing::warn!(waiver = %w.id, error = %e, "waiver selector unreadable; ignored");
                    None
                }
            })
            .collect();
        // The longest-lived waiver wins when several cover a result: it is the one in force.
        list.sort_by(|a, b| {
            b.0.expires_at
                .cmp(&a.0.expires_at)
                .then(a.0.id.cmp(&b.0.id))
        });
        Self(list)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The waiver covering `rule` on a host with `labels`, if any.
    pub fn find(&self, rule: &str, labels: &Labels) -> Option<&WaiverRecord> {
        self.0
            .iter()
            .find(|(w, s)| w.rule == rule && s.matches(labels))
            .map(|(w, _)| w)
    }

    /// The waiver to apply to a result with `status`: one when a `fail` or `error` is covered.
    pub fn apply(&self, rule: &str, status: &str, labels: &Labels) -> Option<AppliedWaiver> {
        if !matches!(status, "fail" | "error") || self.is_empty() {
            return None;
        }
        self.find(rule, labels).map(|w| AppliedWaiver {
            waiver: w.clone(),
            was: status.to_string(),
        })
    }
}

/// The status a stored result counts as at `now`: a waived result whose waiver is no longer
/// in `active` (expired, or removed) counts as what it was.
pub fn effective_status<'a>(
    status: &'a str,
    waiver_json: Option<&'a str>,
    active: &HashSet<String>,
) -> std::borrow::Cow<'a, str> {
    if status != WAIVED {
        return status.into();
    }
    match waiver_json.and_then(|j| serde_json::from_str::<AppliedWaiver>(j).ok()) {
        Some(a) if active.contains(&a.waiver.id) => status.into(),
        Some(a) => a.was.into(),
        None => "fail".into(),
    }
}

/// Ids of the waivers active at `now`.
pub fn active_ids(records: &[WaiverRecord], now: i64) -> HashSet<String> {
    records
        .iter()
        .filter(|w| w.active_at(now))
        .map(|w| w.id.clone())
        .collect()
}

pub fn to_proto(w: &WaiverRecord) -> Waiver {
    Waiver {
        id: w.id.clone(),
        rule: w.rule.clone(),
        pack: w.pack.clone(),
        selector: w.selector.clone(),
        reason: w.reason.clone(),
        expires_unix_ms: w.expires_at,
        created_by: w.created_by.clone(),
        created_unix_ms: w.created_at,
        was: String::new(),
    }
}

pub fn applied_to_proto(a: &AppliedWaiver) -> Waiver {
    Waiver {
        was: a.was.clone(),
        ..to_proto(&a.waiver)
    }
}

/// The JSON kept with a waived result.
pub fn applied_json(w: &Waiver) -> String {
    let a = AppliedWaiver {
        waiver: WaiverRecord {
            id: w.id.clone(),
            rule: w.rule.clone(),
            pack: w.pack.clone(),
            selector: w.selector.clone(),
            reason: w.reason.clone(),
            expires_at: w.expires_unix_ms,
            created_by: w.created_by.clone(),
            created_at: w.created_unix_ms,
        },
        was: w.was.clone(),
    };
    serde_json::to_string(&a).unwrap_or_default()
}

/// The waiver kept with a stored result, for the API.
pub fn stored_to_proto(json: Option<&str>) -> Option<Waiver> {
    json.and_then(|j| serde_json::from_str::<AppliedWaiver>(j).ok())
        .map(|a| applied_to_proto(&a))
}

/// A waiver's expiry: a date `YYYY-MM-DD` (the waiver ends at its start, 00:00 UTC: the failure
/// counts again that day) or an RFC 3339 time. Unix ms.
pub fn parse_expiry(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            format!("invalid expiry {s:?}: give a date (2027-03-31) or an RFC 3339 time (2027-03-31T12:00:00Z)")
        })
}

/// Longest a waiver may run: a waiver is a dated exception, not a way to switch a check off.
pub const MAX_WAIVER_DAYS: i64 = 366 * 3;

/// Checks a new waiver's fields; `Err` says what is wrong.
pub fn validate(
    rule: &str,
    selector: &str,
    reason: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), String> {
    if rule.trim().is_empty() {
        return Err("a waiver names the check it waives (--rule)".into());
    }
    Selector::parse(selector)?;
    if reason.trim().len() < 3 {
        return Err("a waiver says why (--reason): auditors read it".into());
    }
    if reason.len() > 2000 {
        return Err("the reason is longer than 2000 bytes: link to a ticket instead".into());
    }
    if expires_at <= now {
        return Err(format!(
            "the expiry {} is not in the future",
            rampart_common::time::format_ms(expires_at)
        ));
    }
    if expires_at - now > MAX_WAIVER_DAYS * 86_400_000 {
        return Err(format!(
            "a waiver lasts at most {MAX_WAIVER_DAYS} days; renew it when it expires"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str, rule: &str, pack: &str, selector: &str, expires_at: i64) -> WaiverRecord {
        WaiverRecord {
            id: id.into(),
            rule: rule.into(),
            pack: pack.into(),
            selector: selector.into(),
            reason: "accepted".into(),
            expires_at,
            created_by: "alice".into(),
            created_at: 0,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_active_waivers_of_the_pack_cover_failures_on_matching_hosts() {
        let records = vec![
            w("lab", "r1", "", "env=lab", 1_000),
            w("expired", "r2", "", "", 100),
            w("other-pack", "r3", "cis-rhel-9", "", 1_000),
            w("this-pack", "r4", "linux-baseline", "", 1_000),
        ];
        let active = ActiveWaivers::from_records(records, "linux-baseline", 500);
        let lab = labels(&[("env", "lab")]);
        let prod = labels(&[("env", "prod")]);
        let applied = active.apply("r1", "fail", &lab).unwrap();
        assert_eq!(
            (applied.waiver.id.as_str(), applied.was.as_str()),
            ("lab", "fail")
        );
        assert_eq!(active.apply("r1", "error", &lab).unwrap().was, "error");
        assert!(active.apply("r1", "fail", &prod).is_none(), "selector");
        assert!(
            active.apply("r1", "pass", &lab).is_none(),
            "a pass stays a pass"
        );
        assert!(active.apply("r1", "not_applicable", &lab).is_none());
        assert!(active.apply("r2", "fail", &lab).is_none(), "expired");
        assert!(active.apply("r3", "fail", &lab).is_none(), "another pack's");
        assert!(active.apply("r4", "fail", &prod).is_some());
    }

    #[test]
    fn the_longest_lived_of_several_matching_waivers_is_applied() {
        let records = vec![
            w("short", "r1", "", "", 1_000),
            w("long", "r1", "", "env=lab", 9_000),
        ];
        let active = ActiveWaivers::from_records(records, "p", 0);
        let got = active
            .apply("r1", "fail", &labels(&[("env", "lab")]))
            .unwrap();
        assert_eq!(got.waiver.id, "long");
        let got = active.apply("r1", "fail", &labels(&[])).unwrap();
        assert_eq!(got.waiver.id, "short");
    }

    #[test]
    fn a_waived_result_counts_again_once_its_waiver_is_gone() {
        let applied = AppliedWaiver {
            waiver: w("w1", "r1", "", "", 1_000),
            was: "error".into(),
        };
        let json = serde_json::to_string(&applied).unwrap();
        let records = vec![w("w1", "r1", "", "", 1_000)];
        let now_active = active_ids(&records, 999);
        assert_eq!(effective_status(WAIVED, Some(&json), &now_active), WAIVED);
        let expired = active_ids(&records, 1_000);
        assert_eq!(effective_status(WAIVED, Some(&json), &expired), "error");
        let removed = active_ids(&[], 0);
        assert_eq!(effective_status(WAIVED, Some(&json), &removed), "error");
        assert_eq!(effective_status(WAIVED, None, &now_active), "fail");
        assert_eq!(effective_status("pass", None, &removed), "pass");
        let proto = stored_to_proto(Some(&json)).unwrap();
        assert_eq!((proto.id.as_str(), proto.was.as_str()), ("w1", "error"));
        assert_eq!(
            applied_json(&proto),
            json,
            "round trip through the API form"
        );
    }

    #[test]
    fn expiry_dates_end_at_the_start_of_the_day_and_bad_input_is_explained() {
        assert_eq!(parse_expiry("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_expiry("1970-01-01T00:00:01Z").unwrap(), 1_000);
        assert!(
            parse_expiry("next tuesday")
                .unwrap_err()
                .contains("2027-03-31")
        );
        let day = 86_400_000;
        assert!(validate("r1", "env=lab", "ticket OPS-1", day, 0).is_ok());
        assert!(
            validate("", "", "ticket", day, 0)
                .unwrap_err()
                .contains("--rule")
        );
        assert!(
            validate("r1", "env", "ticket", day, 0).is_err(),
            "bad selector"
        );
        assert!(
            validate("r1", "", "", day, 0)
                .unwrap_err()
                .contains("--reason")
        );
        assert!(
            validate("r1", "", "ticket", 0, 0)
                .unwrap_err()
                .contains("future")
        );
        assert!(validate("r1", "", "ticket", (MAX_WAIVER_DAYS + 1) * day, 0).is_err());
    }
}
