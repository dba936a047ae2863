-- A desktop type's name and description per language (postgres).
-- Keep in step with ../sqlite/0007_desktop_type_texts.sql. UI languages are whatever locale
-- folders the portal ships, so texts live in rows, one per (type, language): adding a language
-- needs no migration. `lang` is a language code such as "de", "en" or "pt-BR".
CREATE TABLE desktop_type_texts (
    type_key    TEXT NOT NULL REFERENCES desktop_types (key) ON DELETE CASCADE,
    lang        TEXT NOT NULL,
    -- Either may be empty (the other one is set); readers fall back to German, then the key.
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (type_key, lang)
);

-- Carry over the texts of the old per-language columns. English rows that only repeated the
-- German text, or were empty, are copied as they were: the fallback gives the same result.
INSERT INTO desktop_type_texts (type_key, lang, name, description)
    SELECT key, 'de', name_de, description_de FROM desktop_types;
INSERT INTO desktop_type_texts (type_key, lang, name, description)
    SELECT key, 'en', name_en, description_en FROM desktop_types
    WHERE name_en <> '' OR description_en <> '';

-- desktop_types.name_de, name_en, description_de and description_en stay (dropping columns on
-- SQLite means rebuilding the table, which desktops references). The store no longer reads
-- them; it still writes the German and English texts there so that a portal of the previous
-- version, started against this database, shows sensible names. Drop them in a later migration.
