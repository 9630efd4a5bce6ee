-- Roles keep rules given in Mender's older {action, object} form, compiled into `permissions`.
-- Permissions now name domain resources (`devices/{id}`) instead of Mender paths; every
-- custom role is compiled again on start (core::roles::refresh_custom).
ALTER TABLE roles ADD COLUMN legacy_permissions TEXT NOT NULL DEFAULT '[]';
