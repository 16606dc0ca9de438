DROP TABLE IF EXISTS identities;
DROP TABLE IF EXISTS oauth_providers;
