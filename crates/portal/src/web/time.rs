//! Times as people at the school read and enter them: in the school's time zone
//! (`timezone`), German or English style.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::i18n::Lang;
use crate::web::error::AppError;

fn zone(name: &str) -> TimeZone {
    // Checked at start (`Config::validate`); UTC only if the database changed under us.
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// Unix seconds as "05.12.2026 14:30" (German) or "2026-12-05 14:30" (English).
pub(crate) fn show(tz: &str, secs: i64, lang: Lang) -> String {
    let Ok(ts) = Timestamp::from_second(secs) else {
        return String::new();
    };
    let local = ts.to_zoned_datetime(zone(tz));
    let pattern = if lang.code() == "de" {
        "%d.%m.%Y %H:%M"
    } else {
        "%Y-%m-%d %H:%M"
    };
    local.strftime(pattern).to_string()
}

/// Unix seconds as a `datetime-local` form value ("2026-12-05T14:30") in the school's zone: what
/// [`parse_local`] reads back.
pub(crate) fn input_value(tz: &str, secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|ts| ts.to_zoned_datetime(zone(tz)).strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// A `datetime-local` form value ("2026-12-05T14:30") in the school's zone as unix seconds.
pub(crate) fn parse_local(tz: &str, value: &str) -> Result<i64, AppError> {
    let civil: DateTime = value
        .trim()
        .parse()
        .map_err(|_| AppError::BadRequest(format!("due: {value:?} is no date and time like 2026-12-05T14:30")))?;
    let zoned = civil
        .to_zoned_datetime(zone(tz))
        .map_err(|e| AppError::BadRequest(format!("due: {value:?} does not exist in {tz}: {e}")))?;
    Ok(zoned.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berlin_times_round_trip_across_summer_time() {
        let winter = parse_local("Europe/Berlin", "2026-12-05T14:30").expect("a winter time");
        assert_eq!(winter, 1_796_477_400);
        assert_eq!(show("Europe/Berlin", winter, Lang::default()), "05.12.2026 14:30");
        let summer = parse_local("Europe/Berlin", "2026-07-01T08:00").expect("a summer time");
        assert_eq!(summer % 86_400, 6 * 3600, "08:00 CEST is 06:00 UTC");
        assert!(parse_local("Europe/Berlin", "morgen").is_err());
        assert_eq!(input_value("Europe/Berlin", winter), "2026-12-05T14:30");
        assert_eq!(
            parse_local("Europe/Berlin", &input_value("Europe/Berlin", summer)).expect("round trip"),
            summer
        );
    }
}
