//! Table and column names for sea-query, shared by both planes. The SQL
//! definitions live in `migrations/`.

use sea_query::Iden;

#[derive(Iden, Clone, Copy)]
pub enum Shards {
    Table,
    Id,
}

#[derive(Iden, Clone, Copy)]
pub enum OperatorTokens {
    Table,
    Id,
    TokenHash,
    Name,
    CreatedAt,
    Source,
    LastUsedAt,
    RevokedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum DataMigrations {
    Table,
    Name,
    AppliedAt,
    Report,
}

#[derive(Iden, Clone, Copy)]
pub enum NodeObservations {
    Table,
    Name,
    Detail,
    ObservedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum Projects {
    Table,
    Id,
    Name,
    Status,
    ShardId,
    Settings,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum ProjectKeys {
    Table,
    Id,
    ProjectId,
    Kind,
    Prefix,
    SecretHash,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum SigningKeys {
    Table,
    Id,
    ProjectId,
    Alg,
    PublicJwk,
    PrivateSealed,
    Active,
    CreatedAt,
    RetiredAt,
    PublishUntil,
}

#[derive(Iden, Clone, Copy)]
pub enum AuthDomains {
    Table,
    Id,
    ProjectId,
    Hostname,
    Verified,
    IsPrimary,
    VerificationValue,
    VerifiedAt,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum Tenants {
    Table,
    Id,
    ProjectId,
    Name,
    CreatedAt,
    UpdatedAt,
    AutoJoinRole,
}

#[derive(Iden, Clone, Copy)]
pub enum TenantDomains {
    Table,
    Id,
    ProjectId,
    TenantId,
    Domain,
    Verified,
    VerificationValue,
    VerifiedAt,
    CreatedAt,
}

/// Column shared by every project-scoped table.
#[derive(Iden, Clone, Copy)]
pub struct ProjectId;

#[derive(Iden, Clone, Copy)]
pub enum Users {
    Table,
    Id,
    ProjectId,
    Email,
    EmailNormalized,
    EmailVerified,
    Name,
    PasswordHash,
    MfaEnabled,
    CreatedAt,
    UpdatedAt,
    Phone,
    PhoneVerified,
    PublicMetadata,
    PrivateMetadata,
    UnsafeMetadata,
    BannedAt,
    BanReason,
    BannedUntil,
    AvatarKey,
    AvatarUrl,
}

#[derive(Iden, Clone, Copy)]
pub enum Sessions {
    Table,
    Id,
    ProjectId,
    UserId,
    Ip,
    UserAgent,
    Amr,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
    RevokedReason,
    VerifiedAt,
    TenantId,
}

#[derive(Iden, Clone, Copy)]
pub enum MfaTotp {
    Table,
    ProjectId,
    UserId,
    SecretSealed,
    ConfirmedAt,
    LastStep,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum MfaRecoveryCodes {
    Table,
    Id,
    ProjectId,
    UserId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum Passkeys {
    Table,
    Id,
    ProjectId,
    UserId,
    UserHandle,
    CredentialId,
    Name,
    Credential,
    BackedUp,
    CreatedAt,
    LastUsedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum PasskeyCeremonies {
    Table,
    Id,
    ProjectId,
    Kind,
    UserId,
    State,
    ExpiresAt,
    ConsumedAt,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum TrustedBrowsers {
    Table,
    Id,
    ProjectId,
    UserId,
    TokenHash,
    UserAgent,
    CreatedAt,
    ExpiresAt,
}

#[derive(Iden, Clone, Copy)]
pub enum MfaChallenges {
    Table,
    Id,
    ProjectId,
    TokenHash,
    UserId,
    FirstFactor,
    Attempts,
    ExpiresAt,
    ConsumedAt,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum RefreshTokens {
    Table,
    Id,
    ProjectId,
    SessionId,
    TokenHash,
    UserAgent,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
    SuccessorId,
}

#[derive(Iden, Clone, Copy)]
pub enum LoginFailures {
    Table,
    Id,
    ProjectId,
    EmailKey,
    Ip,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum AuditEvents {
    Table,
    Id,
    ProjectId,
    Type,
    Actor,
    Subject,
    Ip,
    UserAgent,
    Outcome,
    CreatedAt,
    Data,
}

#[derive(Iden, Clone, Copy)]
pub enum OutboxMessages {
    Table,
    Id,
    ProjectId,
    Channel,
    Kind,
    RecipientHint,
    RecipientHash,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    SentAt,
}

#[derive(Iden, Clone, Copy)]
pub enum OneTimeCodes {
    Table,
    Id,
    ProjectId,
    Purpose,
    UserId,
    Email,
    Target,
    TokenHash,
    CodeHash,
    Attempts,
    Data,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum TenantMembers {
    Table,
    Id,
    ProjectId,
    TenantId,
    UserId,
    Role,
    Source,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum OauthProviders {
    Table,
    Id,
    ProjectId,
    Provider,
    ClientId,
    ClientSecretSealed,
    Scopes,
    Enabled,
    Issuer,
    Endpoints,
    AppleSealed,
    CreatedAt,
    UpdatedAt,
    TenantId,
    Enforce,
    Protocol,
}

#[derive(Iden, Clone, Copy)]
pub enum Identities {
    Table,
    Id,
    ProjectId,
    UserId,
    Provider,
    ProviderUserId,
    Email,
    CreatedAt,
    LastSignInAt,
    Issuer,
}

#[derive(Iden, Clone, Copy)]
pub enum Invitations {
    Table,
    Id,
    ProjectId,
    TenantId,
    Email,
    EmailNormalized,
    Role,
    TokenHash,
    InviterId,
    InviterName,
    Status,
    CreatedAt,
    ExpiresAt,
    AcceptedAt,
    AcceptedBy,
}

#[derive(Iden, Clone, Copy)]
pub enum TenantGroups {
    Table,
    Id,
    ProjectId,
    TenantId,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum GroupMembers {
    Table,
    ProjectId,
    GroupId,
    TenantId,
    UserId,
    CreatedAt,
}
