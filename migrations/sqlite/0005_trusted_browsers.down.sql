DROP TABLE IF EXISTS trusted_browsers;
