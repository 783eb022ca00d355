//! The time zone a person reads times in on pages: their browser's unless
//! they chose one of the IANA zones in their profile.

use serde_json::json;

use super::authz::Caller;
use super::{record_installation, DomainError, DomainResult};
use crate::domain::Context;
use crate::store;

/// The zones one may choose, one IANA name a line (the areas' zones, and
/// UTC), as browsers know them.
const ZONES: &str = include_str!("time_zones.txt");

/// The zones one may choose, A to Z.
pub fn all() -> impl Iterator<Item = &'static str> {
    ZONES.lines().filter(|line| !line.is_empty())
}

/// Whether `name` is a zone one may choose.
pub fn known(name: &str) -> bool {
    all().any(|zone| zone == name)
}

/// Sets the zone `caller` reads times in: an IANA name from [`all`], or
/// empty for their browser's. Audited as `user.time_zone`.
pub async fn choose(state: &Context, caller: &Caller, zone: &str) -> DomainResult<Option<String>> {
    let zone = zone.trim();
    let zone = (!zone.is_empty()).then_some(zone);
    if let Some(zone) = zone {
        if !known(zone) {
            return Err(DomainError::invalid(
                "time_zone",
                format!(
                    "{zone} is not a time zone: choose one from the list, such as Europe/Berlin"
                ),
            ));
        }
    }
    let mut tx = state.store.begin_write().await?;
    store::sessions::set_user_time_zone(&mut tx, caller.user.id, zone).await?;
    record_installation(
        &mut tx,
        caller,
        "user.time_zone",
        &caller.user.email,
        json!({"time_zone": zone, "previous": caller.user.time_zone}),
    )
    .await?;
    tx.commit().await?;
    Ok(zone.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_list_holds_the_zones_people_pick() {
        for zone in ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"] {
            assert!(super::known(zone), "{zone}");
        }
        assert!(!super::known("Mars/Olympus_Mons"));
        assert!(!super::known(""));
        let zones: Vec<_> = super::all().collect();
        assert!(zones.len() > 400, "{}", zones.len());
    }
}
