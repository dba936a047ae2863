//! Desktop types: defaults for a school, the seed's `KASM_IMAGE`, and the configuration's
//! `[[desktop_types]]`, written to the database at start.

use std::collections::BTreeMap;

use portal_store::{DesktopType, Seeded, Store, StoreError};

use crate::config::{Config, DesktopTypeConfig};

/// Kasm Workspaces images a school typically offers, pinned so every class gets the same
/// desktop. Pulled on first use.
fn school_defaults() -> Vec<DesktopTypeConfig> {
    let base = |key: &str, name: &str, name_en: &str, de: &str, en: &str, icon: &str, image: &str| DesktopTypeConfig {
        key: key.into(),
        name: name.into(),
        name_en: Some(name_en.into()),
        description: de.into(),
        description_en: Some(en.into()),
        names: Default::default(),
        descriptions: Default::default(),
        icon: icon.into(),
        image: image.into(),
        container_port: 6901,
        protocol: None,
        env: Default::default(),
        shm_size_mib: 512,
        memory_mib: Some(4096),
        cpus: Some(2.0),
        enabled: true,
        internet: true,
        idle_timeout_minutes: 60,
        max_age_hours: 10,
        groups: Vec::new(),
        users: Vec::new(),
    };
    vec![
        base(
            "ubuntu",
            "Ubuntu-Desktop",
            "Ubuntu desktop",
            "Ein vollständiger Ubuntu-Desktop mit Firefox, Office und Terminal.",
            "A complete Ubuntu desktop with Firefox, office apps and a terminal.",
            "🐧",
            "kasmweb/ubuntu-focal-desktop:1.16.0",
        ),
        base(
            "vscode",
            "VS Code",
            "VS Code",
            "Programmieren mit Visual Studio Code.",
            "Programming with Visual Studio Code.",
            "💻",
            "kasmweb/vs-code:1.16.0",
        ),
        base(
            "chromium",
            "Chromium",
            "Chromium",
            "Ein Webbrowser in einer eigenen, sauberen Umgebung.",
            "A web browser in a clean environment of its own.",
            "🌐",
            "kasmweb/chromium:1.16.0",
        ),
    ]
}

/// A configured type's texts per language: `others` (the `names`/`descriptions` table), then
/// `de` (German, the plain `name`/`description`) and `en` over them. English without its own
/// text repeats the German one, as before texts were per language, so types configured then
/// keep their fingerprint and are not written again on upgrade.
fn texts(others: &BTreeMap<String, String>, de: &str, en: Option<&str>) -> BTreeMap<String, String> {
    let mut texts = others.clone();
    texts.insert("de".to_owned(), de.to_owned());
    match en {
        Some(en) => {
            texts.insert("en".to_owned(), en.to_owned());
        }
        None => {
            texts.entry("en".to_owned()).or_insert_with(|| de.to_owned());
        }
    }
    texts
}

/// Converts a configured type into the stored form.
pub(crate) fn to_stored(c: &DesktopTypeConfig, config: &Config, sort_order: i64) -> DesktopType {
    DesktopType {
        key: c.key.clone(),
        names: texts(&c.names, &c.name, c.name_en.as_deref()),
        descriptions: texts(&c.descriptions, &c.description, c.description_en.as_deref()),
        icon: c.icon.clone(),
        image: c.image.clone(),
        container_port: c.container_port,
        protocol: c.protocol.clone().unwrap_or_else(|| config.kasm.protocol.clone()),
        env: c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        shm_size_bytes: c.shm_size_mib * 1024 * 1024,
        memory_bytes: c.memory_mib.map(|m| m * 1024 * 1024),
        nano_cpus: c.cpus.map(|c| (c * 1e9) as i64),
        enabled: c.enabled,
        internet: c.internet,
        idle_timeout_secs: c.idle_timeout_minutes * 60,
        max_age_secs: c.max_age_hours * 3600,
        allowed_groups: c.groups.clone(),
        allowed_users: c.users.iter().map(|u| u.to_lowercase()).collect(),
        sort_order,
        created_at: 0,
        updated_at: 0,
    }
}

/// Writes configured types (or, on a first start with none anywhere, the school defaults
/// and the seed's `KASM_IMAGE`) to the store — each only when its definition is new or changed
/// since the last start, so an admin's edits in the web UI survive restarts. Errors name the
/// offending type.
pub(crate) async fn seed(store: &Store, config: &Config) -> Result<(), StoreError> {
    let mut wanted: Vec<DesktopTypeConfig> = config.desktop_types.clone();
    if wanted.is_empty() && store.list_desktop_types().await?.is_empty() {
        if let Some(image) = &config.kasm.image {
            let mut t = school_defaults().remove(0);
            t.key = "desktop".into();
            t.name = "Desktop".into();
            t.name_en = Some("Desktop".into());
            t.image = image.clone();
            wanted.push(t);
        }
        wanted.extend(school_defaults());
    }
    for (i, t) in wanted.iter().enumerate() {
        let order = i64::try_from(i).unwrap_or(0) * 10;
        let seeded = store
            .seed_desktop_type(&to_stored(t, config, order))
            .await
            .map_err(|e| match e {
                StoreError::Invalid(m) => StoreError::Invalid(format!("desktop_types[{}] ({:?}): {m}", i, t.key)),
                other => other,
            })?;
        if seeded == Seeded::Written {
            tracing::info!(key = %t.key, "desktop type written from the configuration");
        }
    }
    Ok(())
}

/// The desktop image `scripts/build-real-desktop-image.sh` builds from Debian packages, for
/// machines that cannot pull kasmweb images.
pub(crate) const LOCAL_DEBIAN_IMAGE: &str = "iserv-rd/real-desktop:test";
const LOCAL_DEBIAN_KEY: &str = "debian-local";

fn local_debian_type() -> DesktopTypeConfig {
    let mut t = school_defaults().remove(0);
    t.key = LOCAL_DEBIAN_KEY.into();
    t.name = "Debian-Desktop (lokal gebaut)".into();
    t.name_en = Some("Debian desktop (built locally)".into());
    t.description = "Ein schlichter Debian-Desktop mit Terminal, auf diesem Rechner gebaut.".into();
    t.description_en = Some("A plain Debian desktop with a terminal, built on this machine.".into());
    t.image = LOCAL_DEBIAN_IMAGE.into();
    t.memory_mib = Some(1024);
    t.cpus = Some(1.0);
    t.shm_size_mib = 256;
    t
}

/// Dev mode (desktops on Docker, no `[[desktop_types]]` configured): offers the locally built
/// Debian desktop while the engine has its image, so a newcomer without registry access still
/// gets a real desktop; withdraws it (disabled, not deleted) once the image is gone, so nobody
/// starts a desktop that would try to pull it. Configured types are left to the admin.
pub(crate) async fn offer_local_desktop(
    store: &Store,
    config: &Config,
    runtime: &dyn desktop_runtime::ContainerRuntime,
) -> Result<(), StoreError> {
    if config.runtime != crate::config::RuntimeKind::Docker || !config.desktop_types.is_empty() {
        return Ok(());
    }
    let present = match runtime.has_image(LOCAL_DEBIAN_IMAGE).await {
        Ok(present) => present,
        Err(e) => {
            tracing::warn!(error = %e, image = LOCAL_DEBIAN_IMAGE, "cannot tell whether the local desktop image exists");
            return Ok(());
        }
    };
    let mut t = local_debian_type();
    if !present {
        if store.desktop_type(LOCAL_DEBIAN_KEY).await?.is_none() {
            return Ok(());
        }
        t.enabled = false;
    }
    // First on the dashboard: in dev mode it is the one desktop that starts without a registry.
    store.upsert_desktop_type(&to_stored(&t, config, -10)).await?;
    if present {
        tracing::info!(
            image = LOCAL_DEBIAN_IMAGE,
            key = LOCAL_DEBIAN_KEY,
            "offering the locally built desktop"
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::RuntimeKind;

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap()
    }

    /// `name`/`name_en`/`description`/`description_en` keep working; `names`/`descriptions`
    /// add languages, and the plain fields win for German and English.
    #[test]
    fn configured_texts_per_language() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"[[desktop_types]]
key = "old"
name = "Labor"
description = "Ein Labor"
image = "kasmweb/x:1"

[[desktop_types]]
key = "lab"
name = "Labor"
name_en = "Lab"
names = { de = "ignored", en = "ignored", fr = "Labo", uk = "Лабораторія" }
descriptions = { fr = "Un labo" }
image = "kasmweb/x:1"
"#,
        )
        .unwrap();
        let config = Config::load(Some(&path)).unwrap();
        let old_style = &config.desktop_types[0];
        let t = to_stored(old_style, &config, 0);
        assert_eq!(
            (t.name("de"), t.name("en"), t.description("en")),
            ("Labor", "Labor", "Ein Labor")
        );
        assert_eq!(t.text_langs().into_iter().collect::<Vec<_>>(), ["de", "en"]);

        let with_table = &config.desktop_types[1];
        let t = Store::validate_desktop_type(&to_stored(with_table, &config, 0)).unwrap();
        assert_eq!(
            (
                t.name("de"),
                t.name("en"),
                t.name("fr"),
                t.name("uk"),
                t.description("fr")
            ),
            ("Labor", "Lab", "Labo", "Лабораторія", "Un labo")
        );
        let mut only_table = with_table.clone();
        only_table.name_en = None;
        assert_eq!(
            to_stored(&only_table, &config, 0).name("en"),
            "ignored",
            "names.en without name_en"
        );
    }

    #[tokio::test]
    async fn the_local_desktop_is_withdrawn_when_its_image_is_gone_and_left_alone_when_types_are_configured() {
        let dir = tempfile::tempdir().unwrap();
        let offered = store(&dir).await;
        let config = Config {
            runtime: RuntimeKind::Docker,
            ..Config::default()
        };
        // Offered earlier, while the image was there.
        offered
            .upsert_desktop_type(&to_stored(&local_debian_type(), &config, -10))
            .await
            .unwrap();
        // A runtime without that image (the static one has no images at all).
        let without_image = desktop_runtime::StaticRuntime::new(&[]).unwrap();
        offer_local_desktop(&offered, &config, &without_image).await.unwrap();
        let t = offered.desktop_type(LOCAL_DEBIAN_KEY).await.unwrap().unwrap();
        assert!(!t.enabled, "withdrawn, not deleted");
        assert_eq!(t.name("de"), "Debian-Desktop (lokal gebaut)");

        // Never offered, image absent: nothing is written.
        let fresh = tempfile::tempdir().unwrap();
        let empty = store(&fresh).await;
        offer_local_desktop(&empty, &config, &without_image).await.unwrap();
        assert!(empty.desktop_type(LOCAL_DEBIAN_KEY).await.unwrap().is_none());

        // Types configured by the admin: the portal adds none of its own.
        let configured = Config {
            desktop_types: vec![school_defaults().remove(0)],
            ..config
        };
        offer_local_desktop(&empty, &configured, &without_image).await.unwrap();
        assert!(empty.desktop_type(LOCAL_DEBIAN_KEY).await.unwrap().is_none());
    }
}
