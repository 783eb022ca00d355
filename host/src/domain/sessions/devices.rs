//! Known devices: a browser that signed in to an account before carries a
//! cookie, sealed with the server's secrets key, that names the account, so
//! its sign-in attempts are counted on their own; an unlock link makes a new
//! browser one.

use time::OffsetDateTime;

use crate::secretbox::SecretBox;
use crate::secrets;

/// How long a browser stays a known device of an account after signing in.
pub const DEVICE_DAYS: i64 = 365;
/// How long an unlock link from [`super::unlock`] works.
pub const UNLOCK_LINK_MINUTES: i64 = 60;

/// What a sealed device value is for.
#[derive(Clone, Copy)]
pub(super) enum DeviceSeal {
    /// The known-device cookie.
    Cookie,
    /// An unlock link that makes a browser a known device.
    Link,
}

impl DeviceSeal {
    fn context(self, user_id: i64) -> String {
        match self {
            DeviceSeal::Cookie => format!("sign-in-device:{user_id}"),
            DeviceSeal::Link => format!("sign-in-unlock-link:{user_id}"),
        }
    }
}

/// A sealed value naming `user_id`'s device: `<user id>.<sealed nonce and
/// expiry>`. Only the holder of the server's secrets key can make one.
pub(super) fn seal_device(
    secrets: &SecretBox,
    kind: DeviceSeal,
    user_id: i64,
    valid_for: time::Duration,
) -> String {
    let nonce = &secrets::generate("")
        .plaintext
        .chars()
        .take(32)
        .collect::<String>();
    let expires = (OffsetDateTime::now_utc() + valid_for).unix_timestamp();
    let sealed = secrets.seal(&kind.context(user_id), &format!("{nonce}:{expires}"));
    format!("{user_id}.{sealed}")
}

/// The user and device nonce a sealed device value names, if it is
/// genuine, of `kind`, and not expired.
pub(super) fn open_device(
    secrets: &SecretBox,
    kind: DeviceSeal,
    value: &str,
) -> Option<(i64, String)> {
    let (user_id, sealed) = value.split_once('.')?;
    let user_id: i64 = user_id.parse().ok()?;
    let plain = secrets.open(&kind.context(user_id), sealed).ok()?;
    let (nonce, expires) = plain.split_once(':')?;
    let expires = OffsetDateTime::from_unix_timestamp(expires.parse().ok()?).ok()?;
    (expires > OffsetDateTime::now_utc()).then(|| (user_id, nonce.to_owned()))
}

/// A new known-device cookie value for `user_id`.
pub fn new_device(secrets: &SecretBox, user_id: i64) -> String {
    seal_device(
        secrets,
        DeviceSeal::Cookie,
        user_id,
        time::Duration::days(DEVICE_DAYS),
    )
}

/// The known-device cookie an unlock link from [`super::unlock`] stands for: a
/// new one for the link's user, or None when the link is not genuine or
/// has expired.
pub fn device_from_unlock_link(secrets: &SecretBox, link_token: &str) -> Option<String> {
    let (user_id, _) = open_device(secrets, DeviceSeal::Link, link_token)?;
    Some(new_device(secrets, user_id))
}
