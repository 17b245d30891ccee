//! Waivers: a failing check accepted on some hosts, with the reason, until a date.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Result, Store};

/// A waiver as stored. It covers `rule` (in `pack`, or any pack when empty) on the hosts matching
/// `selector`, until `expires_at` (Unix ms, exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverRecord {
    pub id: String,
    pub rule: String,
    #[serde(default)]
    pub pack: String,
    #[serde(default)]
    pub selector: String,
    pub reason: String,
    pub expires_at: i64,
    pub created_by: String,
    #[serde(default)]
    pub created_at: i64,
}

impl WaiverRecord {
    /// Whether it still excuses a failure at `now` (Unix ms).
    pub fn active_at(&self, now: i64) -> bool {
        now < self.expires_at
    }
}

impl Store {
    pub async fn insert_waiver(&self, w: &WaiverRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO waivers (id, rule, pack, selector, reason, expires_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&w.id)
        .bind(&w.rule)
        .bind(&w.pack)
        .bind(&w.selector)
        .bind(&w.reason)
        .bind(w.expires_at)
        .bind(&w.created_by)
        .bind(w.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every waiver, expired ones included, soonest to expire first.
    pub async fn waivers(&self) -> Result<Vec<WaiverRecord>> {
        let rows = sqlx::query("SELECT * FROM waivers ORDER BY expires_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(WaiverRecord {
                    id: r.try_get("id")?,
                    rule: r.try_get("rule")?,
                    pack: r.try_get("pack")?,
                    selector: r.try_get("selector")?,
                    reason: r.try_get("reason")?,
                    expires_at: r.try_get("expires_at")?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Removes a waiver; false when there was none. Results it waived keep their record of it.
    pub async fn delete_waiver(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM waivers WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?
            .rows_affected()
            == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(waivers_round_trip_and_are_removed_by_id);

    async fn waivers_round_trip_and_are_removed_by_id(db: TestDb) {
        let s = db.open().await;
        let w = |id: &str, expires_at: i64| WaiverRecord {
            id: id.into(),
            rule: "sshd-x11-forwarding".into(),
            pack: String::new(),
            selector: "env=lab".into(),
            reason: "lab hosts forward X11 for the GUI tests; ticket OPS-12 — 'quoted' ✓".into(),
            expires_at,
            created_by: "alice".into(),
            created_at: 5,
        };
        s.insert_waiver(&w("w-b", 300)).await.unwrap();
        s.insert_waiver(&w("w-a", 200)).await.unwrap();
        assert_eq!(
            s.waivers().await.unwrap(),
            vec![w("w-a", 200), w("w-b", 300)]
        );
        assert!(
            s.insert_waiver(&w("w-a", 1)).await.is_err(),
            "ids are unique"
        );
        assert!(s.delete_waiver("w-a").await.unwrap());
        assert!(!s.delete_waiver("w-a").await.unwrap());
        assert_eq!(s.waivers().await.unwrap(), vec![w("w-b", 300)]);
        // Survives a reopen (a restart).
        drop(s);
        assert_eq!(db.open().await.waivers().await.unwrap().len(), 1);
    }
}
