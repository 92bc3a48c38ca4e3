-- Reverts 20261215000000_user_roles.up.sql: every role goes.
DROP TABLE user_roles;
