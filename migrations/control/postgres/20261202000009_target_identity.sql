-- the identity of the target database each environment's mirrored runs, verifications and
-- demo seeding describe; when the target's identity changes, they are dropped from the mirror
-- (the audit log keeps what they were).
alter table environments add column target_identity text;
