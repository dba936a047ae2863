-- Whether desktops of a type may reach the internet (postgres). Keep in step with
-- ../sqlite/0009_type_internet.sql. 0 (exams): the desktop joins an internal Docker network
-- and reaches nothing outside; existing types keep the access they had.
ALTER TABLE desktop_types ADD COLUMN internet BIGINT NOT NULL DEFAULT 1 CHECK (internet IN (0, 1));
