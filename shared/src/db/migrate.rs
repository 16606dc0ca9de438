//! Embedded migrations (with the data migrations after them) and the
//! startup check of the two Postgres roles.

use super::*;

impl Db {
    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.pool {
            Pool::Pg(_) => &PG_MIGRATOR,
            Pool::Lite(_) => &SQLITE_MIGRATOR,
        }
    }

    pub async fn migrate_up(&self) -> Result<(), DbError> {
        match &self.pool {
            Pool::Pg(p) => PG_MIGRATOR.run(p).await?,
            Pool::Lite(p) => SQLITE_MIGRATOR.run(&p.write).await?,
        }
        crate::data_migrations::run(self).await
    }

    /// Reverts the newest applied migration; returns its version.
    pub async fn migrate_down(&self) -> Result<Option<i64>, DbError> {
        let applied: Vec<i64> = self
            .migration_status()
            .await?
            .into_iter()
            .filter(|m| m.applied)
            .map(|m| m.version)
            .collect();
        let Some(&last) = applied.last() else {
            return Ok(None);
        };
        let target = applied.iter().rev().nth(1).copied().unwrap_or(0);
        match &self.pool {
            Pool::Pg(p) => PG_MIGRATOR.undo(p, target).await?,
            Pool::Lite(p) => SQLITE_MIGRATOR.undo(&p.write, target).await?,
        }
        Ok(Some(last))
    }

    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, DbError> {
        const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success";
        let applied: Vec<i64> = match &self.pool {
            Pool::Pg(p) => {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                        .fetch_one(p)
                        .await?;
                if exists.is_some() {
                    sqlx::query_scalar(APPLIED).fetch_all(p).await?
                } else {
                    Vec::new()
                }
            }
            Pool::Lite(p) => {
                let exists: Option<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_optional(&p.read)
                .await?;
                if exists.is_some() {
                    sqlx::query_scalar(APPLIED).fetch_all(&p.read).await?
                } else {
                    Vec::new()
                }
            }
        };
        Ok(self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                applied: applied.contains(&m.version),
            })
            .collect())
    }

    pub async fn migrations_current(&self) -> Result<bool, DbError> {
        Ok(self.migration_status().await?.iter().all(|m| m.applied))
    }

    /// Refuses to run unless both roles exist, this connection may switch to
    /// them, and the data-plane role cannot bypass row-level security.
    pub async fn check_roles(&self) -> Result<(), DbError> {
        let Pool::Pg(pool) = &self.pool else {
            return Ok(());
        };
        for role in [APP_ROLE, CONTROL_ROLE] {
            let row: Option<(bool, bool, bool)> = sqlx::query_as(
                "SELECT rolsuper, rolbypassrls, pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1",
            )
            .bind(role)
            .fetch_optional(pool)
            .await?;
            let Some((superuser, bypass, member)) = row else {
                return Err(DbError::Setup(format!(
                    "role {role} does not exist; run `identity migrate up`"
                )));
            };
            if role == APP_ROLE && (superuser || bypass) {
                return Err(DbError::Setup(format!(
                    "role {APP_ROLE} is superuser or has BYPASSRLS; row-level security would not apply. \
                     Run: ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS"
                )));
            }
            if !member {
                return Err(DbError::Setup(format!(
                    "the connecting role cannot switch to {role}; run: GRANT {role} TO <connecting role>"
                )));
            }
        }
        // The data-plane role must not reach the control role's policies,
        // which see every project.
        let (inherits,): (bool,) = sqlx::query_as("SELECT pg_has_role($1, $2, 'MEMBER')")
            .bind(APP_ROLE)
            .bind(CONTROL_ROLE)
            .fetch_one(pool)
            .await?;
        if inherits {
            return Err(DbError::Setup(format!(
                "role {APP_ROLE} is a member of {CONTROL_ROLE} and would see every project. \
                 Run: REVOKE {CONTROL_ROLE} FROM {APP_ROLE}"
            )));
        }
        Ok(())
    }
}
