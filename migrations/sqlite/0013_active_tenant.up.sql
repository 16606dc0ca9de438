-- The active tenant of a session (POST /v1/auth/session/tenant): its
-- access tokens carry the tenant, the member's role and permissions, and
-- the choice sticks to the session through refreshes.
ALTER TABLE sessions ADD COLUMN tenant_id TEXT;
