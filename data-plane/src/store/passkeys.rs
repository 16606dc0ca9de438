//! Passkeys and their ceremonies. A passkey row holds the credential as
//! webauthn-rs serialises it (public key, counter, backup state: nothing
//! secret). A ceremony row holds the server side of one register or login
//! ceremony between its two halves: 5 minutes, spent with a compare-and-set.

use identity_shared::db::{DbError, Tx};
use identity_shared::ids::new_id;
use identity_shared::schema::{PasskeyCeremonies, Passkeys};
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Order, Query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    pub user_handle: String,
    pub credential_id: String,
    pub name: String,
    pub credential: String,
    pub backed_up: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: [Passkeys; 9] = [
    Passkeys::Id,
    Passkeys::UserId,
    Passkeys::UserHandle,
    Passkeys::CredentialId,
    Passkeys::Name,
    Passkeys::Credential,
    Passkeys::BackedUp,
    Passkeys::CreatedAt,
    Passkeys::LastUsedAt,
];

/// The most passkeys one user may hold.
pub const MAX_PER_USER: usize = 10;

pub async fn of_user<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    user_id: &str,
) -> Result<Vec<PasskeyRow>, DbError> {
    tx.fetch_all(
        Query::select()
            .columns(COLUMNS)
            .from(Passkeys::Table)
            .and_where(Expr::col(Passkeys::ProjectId).eq(project_id))
            .and_where(Expr::col(Passkeys::UserId).eq(user_id))
            .order_by(Passkeys::Id, Order::Asc),
    )
    .await
}

/// The passkeys of the user a discoverable credential named by its handle.
pub async fn of_handle(
    tx: &mut Tx,
    project_id: &str,
    user_handle: &str,
) -> Result<Vec<PasskeyRow>, DbError> {
    tx.fetch_all(
        Query::select()
            .columns(COLUMNS)
            .from(Passkeys::Table)
            .and_where(Expr::col(Passkeys::ProjectId).eq(project_id))
            .and_where(Expr::col(Passkeys::UserHandle).eq(user_handle)),
    )
    .await
}

pub struct NewPasskey<'a> {
    pub project_id: &'a str,
    pub user_id: &'a str,
    pub user_handle: &'a str,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub credential: &'a str,
    pub backed_up: bool,
}

pub async fn insert(tx: &mut Tx, p: &NewPasskey<'_>) -> Result<PasskeyRow, DbError> {
    let row = PasskeyRow {
        id: new_id("pky"),
        user_id: p.user_id.to_string(),
        user_handle: p.user_handle.to_string(),
        credential_id: p.credential_id.to_string(),
        name: p.name.to_string(),
        credential: p.credential.to_string(),
        backed_up: p.backed_up,
        created_at: now_ms(),
        last_used_at: None,
    };
    tx.execute(
        Query::insert()
            .into_table(Passkeys::Table)
            .columns([
                Passkeys::Id,
                Passkeys::ProjectId,
                Passkeys::UserId,
                Passkeys::UserHandle,
                Passkeys::CredentialId,
                Passkeys::Name,
                Passkeys::Credential,
                Passkeys::BackedUp,
                Passkeys::CreatedAt,
            ])
            .values_panic([
                row.id.clone().into(),
                p.project_id.into(),
                row.user_id.clone().into(),
                row.user_handle.clone().into(),
                row.credential_id.clone().into(),
                row.name.clone().into(),
                row.credential.clone().into(),
                row.backed_up.into(),
                row.created_at.into(),
            ]),
    )
    .await?;
    Ok(row)
}

/// Stores the credential after a use (its counter and backup state).
pub async fn used(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    credential: &str,
    backed_up: bool,
) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Passkeys::Table)
            .values([
                (Passkeys::Credential, credential.into()),
                (Passkeys::BackedUp, backed_up.into()),
                (Passkeys::LastUsedAt, now_ms().into()),
            ])
            .and_where(Expr::col(Passkeys::ProjectId).eq(project_id))
            .and_where(Expr::col(Passkeys::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// Renames one of the user's passkeys; false when it is not theirs.
pub async fn rename(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    id: &str,
    name: &str,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::update()
                .table(Passkeys::Table)
                .value(Passkeys::Name, name)
                .and_where(Expr::col(Passkeys::ProjectId).eq(project_id))
                .and_where(Expr::col(Passkeys::UserId).eq(user_id))
                .and_where(Expr::col(Passkeys::Id).eq(id)),
        )
        .await?;
    Ok(n == 1)
}

/// Deletes one of the user's passkeys (`id`), or all of them (`None`).
pub async fn delete(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    id: Option<&str>,
) -> Result<u64, DbError> {
    let mut q = Query::delete();
    q.from_table(Passkeys::Table)
        .and_where(Expr::col(Passkeys::ProjectId).eq(project_id))
        .and_where(Expr::col(Passkeys::UserId).eq(user_id));
    if let Some(id) = id {
        q.and_where(Expr::col(Passkeys::Id).eq(id));
    }
    tx.execute(&q).await
}

/// How long a ceremony can be finished.
pub const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;

/// Stores the server side of a ceremony; returns its id (`challenge_id`).
pub async fn begin_ceremony(
    tx: &mut Tx,
    project_id: &str,
    kind: &str,
    user_id: Option<&str>,
    state: &str,
) -> Result<String, DbError> {
    let id = new_id("pkc");
    let now = now_ms();
    tx.execute(
        Query::insert()
            .into_table(PasskeyCeremonies::Table)
            .columns([
                PasskeyCeremonies::Id,
                PasskeyCeremonies::ProjectId,
                PasskeyCeremonies::Kind,
                PasskeyCeremonies::UserId,
                PasskeyCeremonies::State,
                PasskeyCeremonies::ExpiresAt,
                PasskeyCeremonies::CreatedAt,
            ])
            .values_panic([
                id.clone().into(),
                project_id.into(),
                kind.into(),
                user_id.map(str::to_string).into(),
                state.into(),
                (now + CEREMONY_TTL_MS).into(),
                now.into(),
            ]),
    )
    .await?;
    Ok(id)
}

/// A ceremony's server side, once spent.
#[derive(Debug, sqlx::FromRow)]
pub struct Ceremony {
    pub kind: String,
    pub user_id: Option<String>,
    pub state: String,
}

/// Spends ceremony `id`: its kind, user and state, for exactly one caller,
/// while it is unexpired.
pub async fn finish_ceremony(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
) -> Result<Option<Ceremony>, DbError> {
    let row: Option<Ceremony> = tx
        .fetch_optional(
            Query::select()
                .columns([
                    PasskeyCeremonies::Kind,
                    PasskeyCeremonies::UserId,
                    PasskeyCeremonies::State,
                ])
                .from(PasskeyCeremonies::Table)
                .and_where(Expr::col(PasskeyCeremonies::ProjectId).eq(project_id))
                .and_where(Expr::col(PasskeyCeremonies::Id).eq(id)),
        )
        .await?;
    let now = now_ms();
    let spent = tx
        .execute(
            Query::update()
                .table(PasskeyCeremonies::Table)
                .value(PasskeyCeremonies::ConsumedAt, now)
                .and_where(Expr::col(PasskeyCeremonies::ProjectId).eq(project_id))
                .and_where(Expr::col(PasskeyCeremonies::Id).eq(id))
                .and_where(Expr::col(PasskeyCeremonies::ConsumedAt).is_null())
                .and_where(Expr::col(PasskeyCeremonies::ExpiresAt).gt(now)),
        )
        .await?;
    Ok(row.filter(|_| spent == 1))
}

/// The passkey with this credential id (base64url), whoever it belongs to.
pub async fn by_credential_id(
    tx: &mut Tx,
    project_id: &str,
    credential_id: &str,
) -> Result<Option<PasskeyRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Passkeys::Table)
            .and_where(Expr::col(Passkeys::ProjectId).eq(project_id))
            .and_where(Expr::col(Passkeys::CredentialId).eq(credential_id)),
    )
    .await
}
