-- why a running run holds between chunks while it does: waiting out a fault of its database
-- (which then cannot record it itself) or throttled by a health signal. Written by the runner
-- into the mirror only; null while the run copies.
alter table runs add column hold_kind text;
alter table runs add column hold_reason text;
alter table runs add column hold_label text;
alter table runs add column hold_since bigint;
alter table runs add column hold_next_try bigint;
