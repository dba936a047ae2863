-- Whether desktops of a type may reach the internet (sqlite). Keep in step with
-- ../postgres/0009_type_internet.sql. 0 (exams): the desktop joins an internal Docker network
-- and reaches nothing outside; existing types keep the access they had.
ALTER TABLE desktop_types ADD COLUMN internet INTEGER NOT NULL DEFAULT 1 CHECK (internet IN (0, 1));
