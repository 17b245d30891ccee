//! Join tokens (enrolment) and operator tokens (API access). Secrets are stored as sha256 only.

use rampart_common::labels::Labels;
use rampart_common::time::now_ms;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Role, Store, StoreError, labels_json, parse_json};

/// Why a join token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    Unknown,
    Expired,
    UsedUp,
}

/// A join token that was accepted (one use consumed).
#[derive(Debug, Clone)]
pub struct AcceptedJoin {
    pub token_id: String,
    pub labels: Labels,
}

/// A valid operator token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// When it was last used (None: never), so `authenticate` records use at most once a minute.
    pub last_used_at: Option<i64>,
}

/// An operator token as `admin token ls` shows it: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Why a token cannot be revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeRefusal {
    /// Neither an id nor a live token's name.
    Unknown,
    /// Several live tokens have this name: their ids.
    Ambiguous(Vec<String>),
    /// It is the last live admin token: revoking it would lock every admin out.
    LastAdmin,
}

fn token_info(r: &AnyRow) -> Result<OperatorTokenInfo> {
    Ok(OperatorTokenInfo {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: role_of(r)?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn role_of(r: &AnyRow) -> Result<Role> {
    let role: String = r.try_get("role")?;
    role.parse().map_err(|detail| StoreError::Corrupt {
        what: "token role",
        detail,
    })
}

/// sha256 hex of a secret: tokens are looked up by it and never stored in clear.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Store {
    pub async fn insert_join_token(
        &self,
        id: &str,
        secret: &str,
        labels: &Labels,
        expires_at: i64,
        uses: u32,
        created_by: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO join_tokens (id, hash, labels, expires_at, uses_left, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(hash_secret(secret))
            .bind(labels_json(labels))
            .bind(expires_at)
            .bind(i64::from(uses))
            .bind(created_by)
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Consumes one use of a join token, atomically; or says why it cannot be used.
    pub async fn use_join_token(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<AcceptedJoin, TokenRefusal>> {
        let hash = hash_secret(secret);
        let now = now_ms();
        let updated = sqlx::query(
            "UPDATE join_tokens SET uses_left = uses_left - 1 WHERE hash = $1 AND uses_left > 0 AND expires_at > $2
             RETURNING id, labels",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(row) = updated {
            return Ok(Ok(AcceptedJoin {
                token_id: row.try_get("id")?,
                labels: parse_json("token labels", &row.try_get::<String, _>("labels")?)?,
            }));
        }
        let row = sqlx::query("SELECT expires_at, uses_left FROM join_tokens WHERE hash = $1")
            .bind(&hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(Err(match row {
            None => TokenRefusal::Unknown,
            Some(r) if r.try_get::<i64, _>("expires_at")? <= now => TokenRefusal::Expired,
            Some(_) => TokenRefusal::UsedUp,
        }))
    }

    pub async fn insert_operator_token(
        &self,
        id: &str,
        secret: &str,
        name: &str,
        role: Role,
        expires_at: Option<i64>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO operator_tokens (id, hash, name, role, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(hash_secret(secret))
            .bind(name)
            .bind(role.as_str())
            .bind(expires_at)
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Inserts the first operator token, only if there is none yet: coordinators starting together
    /// on one empty database make one initial admin token between them. False when one exists.
    pub async fn insert_first_operator_token(
        &self,
        id: &str,
        secret: &str,
        name: &str,
        role: Role,
    ) -> Result<bool> {
        let mut tx = self.begin_locked(super::WriteLock::OperatorTokens).await?;
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM operator_tokens")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if n > 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO operator_tokens (id, hash, name, role, expires_at, created_at) VALUES ($1, $2, $3, $4, NULL, $5)")
            .bind(id)
            .bind(hash_secret(secret))
            .bind(name)
            .bind(role.as_str())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How many operator tokens exist (none on a fresh data dir).
    pub async fn operator_token_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM operator_tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// The operator token with this secret, if it exists, has not expired and is not revoked.
    pub async fn operator_token(&self, secret: &str) -> Result<Option<OperatorToken>> {
        let row = sqlx::query(
            "SELECT id, name, role, last_used_at FROM operator_tokens
             WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(hash_secret(secret))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(OperatorToken {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: role_of(&r)?,
                last_used_at: r.try_get("last_used_at")?,
            })
        })
        .transpose()
    }

    /// Records that a token was used.
    pub async fn touch_operator_token(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE operator_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Every operator token, oldest first.
    pub async fn operator_tokens(&self) -> Result<Vec<OperatorTokenInfo>> {
        let rows = sqlx::query("SELECT * FROM operator_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_info).collect()
    }

    /// Revokes the token with this id, or the one live token with this name.
    pub async fn revoke_operator_token(
        &self,
        id_or_name: &str,
    ) -> Result<std::result::Result<OperatorTokenInfo, RevokeRefusal>> {
        let now = now_ms();
        let live =
            |t: &OperatorTokenInfo| t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now);
        let mut tx = self.begin_locked(super::WriteLock::OperatorTokens).await?;
        let tokens = sqlx::query("SELECT * FROM operator_tokens")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(token_info)
            .collect::<Result<Vec<_>>>()?;
        let named: Vec<&OperatorTokenInfo> = tokens
            .iter()
            .filter(|t| t.name == id_or_name && live(t))
            .collect();
        let target = match tokens.iter().find(|t| t.id == id_or_name) {
            Some(t) => t,
            None => match named.as_slice() {
                [] => return Ok(Err(RevokeRefusal::Unknown)),
                [one] => *one,
                many => {
                    return Ok(Err(RevokeRefusal::Ambiguous(
                        many.iter().map(|t| t.id.clone()).collect(),
                    )));
                }
            },
        };
        let admins_left = tokens
            .iter()
            .filter(|t| t.role == Role::Admin && live(t) && t.id != target.id)
            .count();
        if target.role == Role::Admin && live(target) && admins_left == 0 {
            return Ok(Err(RevokeRefusal::LastAdmin));
        }
        let id = target.id.clone();
        sqlx::query(
            "UPDATE operator_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
        )
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(self
            .operator_tokens()
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or(RevokeRefusal::Unknown))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(
        join_tokens_say_why_they_are_refused,
        operator_tokens_are_listed_revoked_and_the_last_admin_kept,
        coordinators_starting_together_make_one_initial_admin
    );

    use super::*;

    async fn coordinators_starting_together_make_one_initial_admin(db: TestDb) {
        // Separate connections on PostgreSQL, as separate coordinators have; SQLite serves one
        // coordinator, whose writes share one connection.
        let first = db.open().await;
        let stores = match first.backend() {
            crate::store::Backend::Postgres => [first, db.open().await, db.open().await],
            crate::store::Backend::Sqlite => [first.clone(), first.clone(), first],
        };
        let made = futures::future::join_all(stores.iter().enumerate().map(|(i, s)| async move {
            let (id, secret) = (format!("tok{i}"), format!("secret{i}"));
            s.insert_first_operator_token(&id, &secret, "initial-admin", Role::Admin)
                .await
        }))
        .await;
        let made = made.into_iter().map(|r| r.unwrap()).filter(|m| *m).count();
        assert_eq!(made, 1);
        assert_eq!(stores[0].operator_token_count().await.unwrap(), 1);
    }

    async fn join_tokens_say_why_they_are_refused(db: TestDb) {
        let s = db.open().await;
        let labels: Labels = [("env".to_string(), "prod".to_string())].into();
        s.insert_join_token("t1", "secret1", &labels, now_ms() + 60_000, 2, "test")
            .await
            .unwrap();
        s.insert_join_token("t2", "secret2", &labels, now_ms() - 1, 1, "test")
            .await
            .unwrap();
        let ok = s.use_join_token("secret1").await.unwrap().unwrap();
        assert_eq!(ok.labels["env"], "prod");
        s.use_join_token("secret1").await.unwrap().unwrap();
        assert_eq!(
            s.use_join_token("secret1").await.unwrap().unwrap_err(),
            TokenRefusal::UsedUp
        );
        assert_eq!(
            s.use_join_token("secret2").await.unwrap().unwrap_err(),
            TokenRefusal::Expired
        );
        assert_eq!(
            s.use_join_token("nope").await.unwrap().unwrap_err(),
            TokenRefusal::Unknown
        );
    }

    async fn operator_tokens_are_listed_revoked_and_the_last_admin_kept(db: TestDb) {
        let s = db.open().await;
        s.insert_operator_token("a1", "sa1", "root", Role::Admin, None)
            .await
            .unwrap();
        s.insert_operator_token("v1", "sv1", "ci", Role::Viewer, None)
            .await
            .unwrap();
        s.insert_operator_token("v2", "sv2", "ci", Role::Viewer, None)
            .await
            .unwrap();
        s.insert_operator_token("old", "sold", "gone", Role::Admin, Some(now_ms() - 1))
            .await
            .unwrap();
        assert!(s.operator_token("sold").await.unwrap().is_none(), "expired");
        assert_eq!(
            s.revoke_operator_token("ci").await.unwrap().unwrap_err(),
            RevokeRefusal::Ambiguous(vec!["v1".into(), "v2".into()])
        );
        let r = s.revoke_operator_token("v1").await.unwrap().unwrap();
        assert!(r.revoked_at.is_some());
        assert!(s.operator_token("sv1").await.unwrap().is_none(), "revoked");
        // Now the name is unambiguous among live tokens.
        assert_eq!(
            s.revoke_operator_token("ci").await.unwrap().unwrap().id,
            "v2"
        );
        assert_eq!(
            s.revoke_operator_token("root").await.unwrap().unwrap_err(),
            RevokeRefusal::LastAdmin
        );
        assert_eq!(
            s.revoke_operator_token("nobody")
                .await
                .unwrap()
                .unwrap_err(),
            RevokeRefusal::Unknown
        );
        let all = s.operator_tokens().await.unwrap();
        assert_eq!(all.len(), 4);
        assert!(s.operator_token("sa1").await.unwrap().is_some());
    }
}
