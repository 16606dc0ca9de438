DROP TABLE IF EXISTS group_members;
DROP TABLE IF EXISTS tenant_groups;
DROP TABLE IF EXISTS invitations;
