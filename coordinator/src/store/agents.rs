//! Agents: enrolment records, sessions' host facts, online/offline/revoked.

use rampart_common::labels::Labels;
use rampart_common::time::now_ms;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, labels_json, parse_json};

/// Agent life-cycle state as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Online,
    Offline,
    Revoked,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Online => "online",
            AgentState::Offline => "offline",
            AgentState::Revoked => "revoked",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        match s {
            "online" => Ok(Self::Online),
            "offline" => Ok(Self::Offline),
            "revoked" => Ok(Self::Revoked),
            other => Err(StoreError::Corrupt {
                what: "agent state",
                detail: other.to_string(),
            }),
        }
    }
}

/// What the coordinator knows of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub id: String,
    pub hostname: String,
    pub labels: Labels,
    pub state: AgentState,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub version: String,
    pub capabilities: Vec<String>,
    /// Remote address of the latest session.
    pub address: String,
    /// Fingerprint of the certificate issued at enrolment or the latest renewal; a session must
    /// present it (or `prev_fingerprint`).
    pub cert_fingerprint: String,
    /// The certificate before the latest renewal, accepted until the agent is seen with the new
    /// one: an agent that crashed before saving its renewed certificate can still connect.
    pub prev_fingerprint: Option<String>,
    /// When the current certificate expires (Unix ms); None for records older than renewal.
    pub cert_expires_at: Option<i64>,
    pub enrolled_at: i64,
    pub last_seen: i64,
}

/// Which of an agent's certificates a session presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertMatch {
    Current,
    /// The one before the latest renewal: the agent never saved the new one.
    Previous,
    Neither,
}

impl AgentRecord {
    pub fn cert_match(&self, fingerprint: &str) -> CertMatch {
        if self.cert_fingerprint == fingerprint {
            CertMatch::Current
        } else if self.prev_fingerprint.as_deref() == Some(fingerprint) {
            CertMatch::Previous
        } else {
            CertMatch::Neither
        }
    }
}

/// What a session's `Hello` tells about the host.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub version: String,
    pub labels: Labels,
    pub capabilities: Vec<String>,
    pub address: String,
}

fn agent_from_row(r: &AnyRow) -> Result<AgentRecord> {
    Ok(AgentRecord {
        id: r.try_get("id")?,
        hostname: r.try_get("hostname")?,
        labels: parse_json("agent labels", &r.try_get::<String, _>("labels")?)?,
        state: AgentState::parse(&r.try_get::<String, _>("state")?)?,
        os: r.try_get("os")?,
        kernel: r.try_get("kernel")?,
        arch: r.try_get("arch")?,
        version: r.try_get("version")?,
        capabilities: parse_json(
            "agent capabilities",
            &r.try_get::<String, _>("capabilities")?,
        )?,
        address: r.try_get("address")?,
        cert_fingerprint: r.try_get("cert_fingerprint")?,
        prev_fingerprint: r.try_get("prev_fingerprint")?,
        cert_expires_at: r.try_get("cert_expires_at")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen: r.try_get("last_seen")?,
    })
}

impl Store {
    pub async fn insert_agent(&self, rec: &AgentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO agents (id, hostname, labels, state, cert_fingerprint, cert_expires_at, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&rec.id)
        .bind(&rec.hostname)
        .bind(labels_json(&rec.labels))
        .bind(rec.state.as_str())
        .bind(&rec.cert_fingerprint)
        .bind(rec.cert_expires_at)
        .bind(rec.enrolled_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn agent(&self, id: &str) -> Result<Option<AgentRecord>> {
        let row = sqlx::query("SELECT * FROM agents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    pub async fn agents(&self) -> Result<Vec<AgentRecord>> {
        let rows = sqlx::query("SELECT * FROM agents ORDER BY hostname, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(agent_from_row).collect()
    }

    /// Records a session start: host facts from `Hello`, state online. Labels from `Hello` are
    /// merged over those recorded at enrolment.
    pub async fn agent_online(&self, id: &str, info: &HostInfo) -> Result<()> {
        let mut labels = self.agent(id).await?.map(|a| a.labels).unwrap_or_default();
        labels.extend(info.labels.clone());
        sqlx::query(
            "UPDATE agents SET hostname = $1, os = $2, kernel = $3, arch = $4, version = $5, labels = $6, capabilities = $7,
             address = $8, state = 'online', last_seen = $9, coordinator_id = $10 WHERE id = $11 AND state != 'revoked'",
        )
        .bind(&info.hostname)
        .bind(&info.os)
        .bind(&info.kernel)
        .bind(&info.arch)
        .bind(&info.version)
        .bind(labels_json(&labels))
        .bind(serde_json::to_string(&info.capabilities).unwrap_or_else(|_| "[]".into()))
        .bind(&info.address)
        .bind(now_ms())
        .bind(self.coordinator_id())
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records that `ids` were heard from at `at`: one statement per few hundred agents, all in one
    /// transaction (heartbeats are batched so that a large fleet costs a write a second, not a
    /// write per agent per interval).
    pub async fn touch_agents(&self, ids: &[String], at: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        for chunk in ids.chunks(super::rows_per_statement(1)) {
            let sql = format!(
                "UPDATE agents SET last_seen = $1 WHERE last_seen < $1 AND id IN ({})",
                super::list_placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(at);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a renewed certificate: it becomes the current one, the current one the previous.
    pub async fn renew_agent_cert(
        &self,
        id: &str,
        fingerprint: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET prev_fingerprint = cert_fingerprint, cert_fingerprint = $1, cert_expires_at = $2
             WHERE id = $3 AND state != 'revoked'",
        )
        .bind(fingerprint)
        .bind(expires_at)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Settles which certificate an agent holds, after a session presented one: the current one
    /// means the previous is no longer needed; the previous one means the renewal never reached
    /// the agent's disk, so it is current again (with its expiry).
    pub async fn settle_agent_cert(
        &self,
        id: &str,
        presented: CertMatch,
        prev_expires_at: Option<i64>,
    ) -> Result<()> {
        let q = match presented {
            CertMatch::Current => sqlx::query(
                "UPDATE agents SET prev_fingerprint = NULL WHERE id = $1 AND prev_fingerprint IS NOT NULL",
            )
            .bind(id),
            CertMatch::Previous => sqlx::query(
                "UPDATE agents SET cert_fingerprint = prev_fingerprint, prev_fingerprint = NULL, cert_expires_at = $1
                 WHERE id = $2 AND prev_fingerprint IS NOT NULL",
            )
            .bind(prev_expires_at)
            .bind(id),
            CertMatch::Neither => return Ok(()),
        };
        q.execute(&self.writer).await?;
        Ok(())
    }

    /// Marks an agent offline unless it was revoked meanwhile or its session has moved to
    /// another coordinator (an agent that left a dying coordinator may be online elsewhere
    /// before the old session's end is noticed here).
    pub async fn agent_offline(&self, id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET state = 'offline'
             WHERE id = $1 AND state = 'online' AND coordinator_id IS NOT DISTINCT FROM $2",
        )
        .bind(id)
        .bind(self.coordinator_id())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Revokes an agent; returns false when no such agent exists.
    pub async fn revoke_agent(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE agents SET state = 'revoked', revoked_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(
        agents_persist_and_revoke,
        a_renewed_certificate_replaces_the_old_once_the_agent_uses_it
    );

    use super::*;

    async fn agents_persist_and_revoke(db: TestDb) {
        let s = db.open().await;
        let rec = AgentRecord {
            hostname: "web-1".into(),
            labels: [("env".to_string(), "prod".to_string())].into(),
            cert_fingerprint: "sha256:00".into(),
            cert_expires_at: Some(now_ms() + 1000),
            ..crate::store::testing::agent_record("agent-1")
        };
        s.insert_agent(&rec).await.unwrap();
        let info = HostInfo {
            hostname: "web-1".into(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        s.agent_online("agent-1", &info).await.unwrap();
        s.close().await;
        let s = db.open().await;
        let got = s.agent("agent-1").await.unwrap().unwrap();
        assert_eq!(got.state, AgentState::Online);
        assert_eq!(got.labels.len(), 2);
        assert_eq!(s.offline_orphans().await.unwrap(), 1);
        assert!(s.revoke_agent("agent-1").await.unwrap());
        s.agent_online("agent-1", &info).await.unwrap();
        assert_eq!(
            s.agent("agent-1").await.unwrap().unwrap().state,
            AgentState::Revoked
        );
        assert!(!s.revoke_agent("agent-9").await.unwrap());
    }

    async fn a_renewed_certificate_replaces_the_old_once_the_agent_uses_it(db: TestDb) {
        let s = db.open().await;
        let rec = AgentRecord {
            hostname: "web-1".into(),
            cert_fingerprint: "sha256:old".into(),
            cert_expires_at: Some(1000),
            enrolled_at: 1,
            ..crate::store::testing::agent_record("agent-1")
        };
        s.insert_agent(&rec).await.unwrap();
        s.renew_agent_cert("agent-1", "sha256:new", 2000)
            .await
            .unwrap();
        let got = s.agent("agent-1").await.unwrap().unwrap();
        assert_eq!(got.cert_match("sha256:new"), CertMatch::Current);
        assert_eq!(got.cert_match("sha256:old"), CertMatch::Previous);
        assert_eq!(got.cert_match("sha256:other"), CertMatch::Neither);
        assert_eq!(got.cert_expires_at, Some(2000));
        // The agent came back with the old one: the renewal never reached its disk.
        s.settle_agent_cert("agent-1", CertMatch::Previous, Some(1000))
            .await
            .unwrap();
        let got = s.agent("agent-1").await.unwrap().unwrap();
        assert_eq!(got.cert_match("sha256:old"), CertMatch::Current);
        assert_eq!(got.cert_match("sha256:new"), CertMatch::Neither);
        assert_eq!(got.cert_expires_at, Some(1000));
        // Renewed again and used: the old one is no longer accepted.
        s.renew_agent_cert("agent-1", "sha256:newer", 3000)
            .await
            .unwrap();
        s.settle_agent_cert("agent-1", CertMatch::Current, None)
            .await
            .unwrap();
        let got = s.agent("agent-1").await.unwrap().unwrap();
        assert_eq!(got.cert_match("sha256:old"), CertMatch::Neither);
        assert_eq!(got.cert_match("sha256:newer"), CertMatch::Current);
    }
}
