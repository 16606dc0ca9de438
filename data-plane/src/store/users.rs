//! Users: the repository every flow uses.

use identity_shared::db::{DbError, Tx};
use identity_shared::error::ApiError;
use identity_shared::ids::new_id;
use identity_shared::schema::Users;
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Query};

/// `Debug` leaves the password hash out. `Deserialize` reads the row as
/// Postgres's `to_jsonb` writes it (the refresh function's answer).
#[derive(Clone, sqlx::FromRow, serde::Deserialize)]
pub struct UserRow {
    pub id: String,
    pub project_id: String,
    pub email: String,
    pub email_normalized: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub mfa_enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// E.164, once the user added one.
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_verified: bool,
    /// JSON objects (text): the server's public and private notes, and the
    /// user's own (`unsafe_metadata`); none is `{}`.
    #[serde(default)]
    pub public_metadata: Option<String>,
    #[serde(default)]
    pub private_metadata: Option<String>,
    #[serde(default)]
    pub unsafe_metadata: Option<String>,
    /// A ban: since when, why, and until when (none: until lifted).
    #[serde(default)]
    pub banned_at: Option<i64>,
    #[serde(default)]
    pub ban_reason: Option<String>,
    #[serde(default)]
    pub banned_until: Option<i64>,
    /// The avatar: its object's key in the object store, and its URL.
    #[serde(default)]
    pub avatar_key: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

impl UserRow {
    /// Whether a ban holds at `now`.
    pub fn is_banned(&self, now: i64) -> bool {
        self.banned_at.is_some() && self.banned_until.is_none_or(|until| until > now)
    }
}

pub const COLUMNS: [Users; 20] = [
    Users::Id,
    Users::ProjectId,
    Users::Email,
    Users::EmailNormalized,
    Users::EmailVerified,
    Users::Name,
    Users::PasswordHash,
    Users::MfaEnabled,
    Users::CreatedAt,
    Users::UpdatedAt,
    Users::Phone,
    Users::PhoneVerified,
    Users::PublicMetadata,
    Users::PrivateMetadata,
    Users::UnsafeMetadata,
    Users::BannedAt,
    Users::BanReason,
    Users::BannedUntil,
    Users::AvatarKey,
    Users::AvatarUrl,
];

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// A user by canonical email.
pub async fn find_by_email<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    normalized: &str,
) -> Result<Option<UserRow>, DbError> {
    find_where(tx, project_id, Users::EmailNormalized, normalized).await
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    id: &str,
) -> Result<Option<UserRow>, DbError> {
    find_where(tx, project_id, Users::Id, id).await
}

async fn find_where<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    column: Users,
    value: &str,
) -> Result<Option<UserRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Users::Table)
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(column).eq(value)),
    )
    .await
}

pub struct NewUser {
    /// As typed (for display).
    pub email: String,
    /// The canonical form (for uniqueness and lookups).
    pub email_normalized: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub email_verified: bool,
}

/// Inserts a user; `409 email_taken` when the email is in use in the project.
pub async fn insert(tx: &mut Tx, project_id: &str, new: NewUser) -> Result<UserRow, InsertError> {
    let now = now_ms();
    let row = UserRow {
        id: new_id("usr"),
        project_id: project_id.to_string(),
        email: new.email,
        email_normalized: new.email_normalized,
        email_verified: new.email_verified,
        name: new.name,
        password_hash: new.password_hash,
        mfa_enabled: false,
        created_at: now,
        updated_at: now,
        phone: None,
        phone_verified: false,
        public_metadata: None,
        private_metadata: None,
        unsafe_metadata: None,
        banned_at: None,
        ban_reason: None,
        banned_until: None,
        avatar_key: None,
        avatar_url: None,
    };
    tx.execute(
        Query::insert()
            .into_table(Users::Table)
            .columns(COLUMNS)
            .values_panic([
                row.id.clone().into(),
                row.project_id.clone().into(),
                row.email.clone().into(),
                row.email_normalized.clone().into(),
                row.email_verified.into(),
                row.name.clone().into(),
                row.password_hash.clone().into(),
                row.mfa_enabled.into(),
                row.created_at.into(),
                row.updated_at.into(),
                row.phone.clone().into(),
                row.phone_verified.into(),
                row.public_metadata.clone().into(),
                row.private_metadata.clone().into(),
                row.unsafe_metadata.clone().into(),
                row.banned_at.into(),
                row.ban_reason.clone().into(),
                row.banned_until.into(),
                row.avatar_key.clone().into(),
                row.avatar_url.clone().into(),
            ]),
    )
    .await
    .map_err(|e| match e {
        DbError::UniqueViolation(_) => InsertError::EmailTaken,
        other => InsertError::Db(other),
    })?;
    Ok(row)
}

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("the email is in use in this project")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<InsertError> for ApiError {
    fn from(e: InsertError) -> Self {
        match e {
            InsertError::EmailTaken => email_taken(),
            InsertError::Db(d) => d.into(),
        }
    }
}

pub fn email_taken() -> ApiError {
    ApiError::conflict("email_taken", "an account with this email already exists")
}

pub async fn set_password_hash(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    hash: &str,
) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Users::Table)
            .values([
                (Users::PasswordHash, hash.into()),
                (Users::UpdatedAt, now_ms().into()),
            ])
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// Marks the user's email verified, if it is still `normalized` (an
/// address changed meanwhile stays unverified). True when it now is.
pub async fn set_email_verified(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    normalized: &str,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::update()
                .table(Users::Table)
                .values([
                    (Users::EmailVerified, true.into()),
                    (Users::UpdatedAt, now_ms().into()),
                ])
                .and_where(Expr::col(Users::ProjectId).eq(project_id))
                .and_where(Expr::col(Users::Id).eq(id))
                .and_where(Expr::col(Users::EmailNormalized).eq(normalized)),
        )
        .await?;
    Ok(n == 1)
}

/// Removes the user's password (an account reclaimed by its mailbox's
/// owner: see `email::verify::reclaim`).
pub async fn clear_password(tx: &mut Tx, project_id: &str, id: &str) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Users::Table)
            .values([
                (Users::PasswordHash, Option::<String>::None.into()),
                (Users::MfaEnabled, false.into()),
                (Users::UpdatedAt, now_ms().into()),
            ])
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// Removes the user's phone number.
pub async fn clear_phone(tx: &mut Tx, project_id: &str, id: &str) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Users::Table)
            .values([
                (Users::Phone, Option::<String>::None.into()),
                (Users::PhoneVerified, false.into()),
            ])
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// Sets the user's verified phone number.
pub async fn set_phone(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    phone: &str,
) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Users::Table)
            .values([
                (Users::Phone, phone.into()),
                (Users::PhoneVerified, true.into()),
                (Users::UpdatedAt, now_ms().into()),
            ])
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// Moves the user to a new address, not yet verified; `409 email_taken`
/// when another account of the project has it.
pub async fn set_email(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    typed: &str,
    normalized: &str,
) -> Result<(), InsertError> {
    tx.execute(
        Query::update()
            .table(Users::Table)
            .values([
                (Users::Email, typed.into()),
                (Users::EmailNormalized, normalized.into()),
                (Users::EmailVerified, false.into()),
                (Users::UpdatedAt, now_ms().into()),
            ])
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await
    .map_err(|e| match e {
        DbError::UniqueViolation(_) => InsertError::EmailTaken,
        other => InsertError::Db(other),
    })?;
    Ok(())
}

/// Writes `values` (and `updated_at`) to the user.
pub async fn update(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    mut values: Vec<(Users, sea_query::Value)>,
) -> Result<(), DbError> {
    values.push((Users::UpdatedAt, now_ms().into()));
    tx.execute(
        Query::update()
            .table(Users::Table)
            .values(
                values
                    .into_iter()
                    .map(|(c, v)| (c, sea_query::Expr::val(v))),
            )
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// Records whether the user has a confirmed second factor.
pub async fn set_mfa_enabled(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    enabled: bool,
) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Users::Table)
            .values([
                (Users::MfaEnabled, enabled.into()),
                (Users::UpdatedAt, now_ms().into()),
            ])
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// Serialises this transaction with every other that changes the user's
/// credentials (password, second factors) or signs in with them.
pub async fn lock_credentials(tx: &mut Tx, project_id: &str, user_id: &str) -> Result<(), DbError> {
    tx.lock_key(&format!("password:{project_id}:{user_id}"))
        .await
}

/// Takes [`lock_credentials`] and returns the user as stored now, when the
/// stored hash is still `checked` (the one a password was just verified
/// against, outside any transaction). A password changed meanwhile must not
/// be overwritten by a rehash of the old one, nor let a session of the old
/// one outlive the change; a second factor turned on meanwhile must be
/// asked for.
pub async fn lock_password(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    checked: Option<&str>,
) -> Result<Option<UserRow>, DbError> {
    lock_credentials(tx, project_id, user_id).await?;
    let stored = find(tx, project_id, user_id).await?;
    Ok(stored.filter(|u| match (&u.password_hash, checked) {
        (Some(stored), Some(checked)) => {
            identity_shared::crypto::ct_eq(stored.as_bytes(), checked.as_bytes())
        }
        _ => false,
    }))
}
