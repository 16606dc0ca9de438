ALTER TABLE users DROP COLUMN avatar_url;
ALTER TABLE users DROP COLUMN avatar_key;
ALTER TABLE users DROP COLUMN banned_until;
ALTER TABLE users DROP COLUMN ban_reason;
ALTER TABLE users DROP COLUMN banned_at;
ALTER TABLE users DROP COLUMN unsafe_metadata;
ALTER TABLE users DROP COLUMN private_metadata;
ALTER TABLE users DROP COLUMN public_metadata;
