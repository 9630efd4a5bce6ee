-- Version 2: remember each user's last successful login (Mender's User.login_ts).
ALTER TABLE users ADD COLUMN login_ts INTEGER;
