-- What the project's server keeps about a user (public and private
-- metadata, JSON objects), what the user keeps about themself
-- (unsafe_metadata), bans (with a reason and an optional end), and the
-- avatar (its object's key in the object store, and its absolute URL).
ALTER TABLE users ADD COLUMN public_metadata TEXT;
ALTER TABLE users ADD COLUMN private_metadata TEXT;
ALTER TABLE users ADD COLUMN unsafe_metadata TEXT;
ALTER TABLE users ADD COLUMN banned_at BIGINT;
ALTER TABLE users ADD COLUMN ban_reason TEXT;
ALTER TABLE users ADD COLUMN banned_until BIGINT;
ALTER TABLE users ADD COLUMN avatar_key TEXT;
ALTER TABLE users ADD COLUMN avatar_url TEXT;
