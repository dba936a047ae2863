-- Sealed hand-ins (sqlite; keep in step with ../postgres/0013_handin_seals.sql): when the
-- portal copied an assignment's hand-ins after its due time to files.root/sealed/<id>, the copy
-- its teacher sees from then on. NULL: not sealed (still open, or late hand-ins allowed).
ALTER TABLE assignments ADD COLUMN sealed_at INTEGER;
