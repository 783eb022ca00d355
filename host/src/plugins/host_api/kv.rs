//! `kv.*`: each plugin's own key-value store, per workspace and (for
//! periodic tasks) for the installation, with versions for compare-and-set
//! and expiry.

use vigilo_sdk::host::{
    KvDeleted, KvEntry, KvKeys, KV_MAX_ENTRIES, KV_MAX_KEY_BYTES, KV_MAX_VALUE_BYTES,
    KV_VERSION_CONFLICT,
};

use super::{HostCalls, Refusal, Scope};
use crate::store;
use crate::store::plugin_kv::{KvExpect, KvPlace};

impl HostCalls {
    /// The id of the store `workspace` names (None: the installation's,
    /// which only a periodic task may use).
    fn kv_scope(&self, workspace: Option<&str>) -> Result<i64, Refusal> {
        match workspace {
            Some(slug) => Ok(self.workspace(slug)?.id),
            None => match &self.scope {
                Scope::Installation { .. } => Ok(store::plugin_kv::INSTALLATION),
                Scope::Workspace { slug, .. } => Err(Refusal::Asked(format!(
                    "only a periodic task has an installation-wide store; name the workspace \
                     (`\"workspace\": \"{slug}\"`)"
                ))),
            },
        }
    }

    fn kv_key(key: &str) -> Result<&str, Refusal> {
        if key.is_empty() || key.len() > KV_MAX_KEY_BYTES || key.chars().any(char::is_control) {
            return Err(Refusal::Asked(format!(
                "a key is 1 to {KV_MAX_KEY_BYTES} bytes of printable text"
            )));
        }
        Ok(key)
    }

    pub(super) fn kv_get(&self, workspace: Option<&str>, key: &str) -> Result<KvEntry, Refusal> {
        let workspace_id = self.kv_scope(workspace)?;
        let name = self.plugin_name();
        let place = KvPlace {
            plugin: &name,
            workspace_id,
            key: Self::kv_key(key)?,
        };
        let found = self.wait(self.store.kv_get(place))??;
        Ok(match found {
            None => KvEntry {
                key: key.to_owned(),
                ..KvEntry::default()
            },
            Some(row) => KvEntry {
                key: key.to_owned(),
                value: serde_json::from_str(&row.value)
                    .map_err(|e| Refusal::Server(format!("plugin_kv value: {e}")))?,
                version: row.version.max(0) as u64,
                expires_at: row.expires_at,
            },
        })
    }

    pub(super) fn kv_set(&self, set: vigilo_sdk::host::KvSet) -> Result<KvEntry, Refusal> {
        let workspace_id = self.kv_scope(set.workspace.as_deref())?;
        let key = Self::kv_key(&set.key)?;
        if set.value.is_null() {
            return Err(Refusal::Asked(
                "a value may not be null; delete the key instead (kv.delete)".into(),
            ));
        }
        let text = set.value.to_string();
        if text.len() > KV_MAX_VALUE_BYTES {
            return Err(Refusal::Asked(format!(
                "the value is {} bytes as JSON; at most {KV_MAX_VALUE_BYTES} are kept",
                text.len()
            )));
        }
        let expires_at = match set.ttl_seconds {
            None => None,
            Some(ttl @ 1..=31_536_000) => Some(store::now_plus(ttl as i64)),
            Some(_) => {
                return Err(Refusal::Asked(
                    "ttl_seconds is 1 to 31536000 (a year)".into(),
                ))
            }
        };
        let expect = match set.expected_version {
            None => KvExpect::Anything,
            Some(0) => KvExpect::Absent,
            Some(v) => KvExpect::Version(i64::try_from(v).unwrap_or(i64::MAX)),
        };
        let name = self.plugin_name();
        let place = KvPlace {
            plugin: &name,
            workspace_id,
            key,
        };
        let written = self.wait(self.store.kv_set(
            place,
            &text,
            expect,
            expires_at.as_deref(),
            KV_MAX_ENTRIES as i64,
        ))??;
        match written {
            Some(version) => Ok(KvEntry {
                key: set.key,
                value: set.value,
                version: version.max(0) as u64,
                expires_at,
            }),
            None => Err(self.conflict(set.workspace.as_deref(), key, set.expected_version)),
        }
    }

    /// The error of a compare-and-set that lost, with what is there now.
    fn conflict(&self, workspace: Option<&str>, key: &str, expected: Option<u64>) -> Refusal {
        let now = self
            .kv_get(workspace, key)
            .map(|entry| entry.version)
            .unwrap_or_default();
        Refusal::Asked(format!(
            "{KV_VERSION_CONFLICT}: `{key}` is at version {now}, not {}; read it again and retry",
            expected.unwrap_or_default()
        ))
    }

    pub(super) fn kv_delete(
        &self,
        delete: vigilo_sdk::host::KvDelete,
    ) -> Result<KvDeleted, Refusal> {
        let workspace_id = self.kv_scope(delete.workspace.as_deref())?;
        let key = Self::kv_key(&delete.key)?;
        let expect = match delete.expected_version {
            None => KvExpect::Anything,
            Some(v) => KvExpect::Version(i64::try_from(v).unwrap_or(i64::MAX)),
        };
        let name = self.plugin_name();
        let place = KvPlace {
            plugin: &name,
            workspace_id,
            key,
        };
        match self.wait(self.store.kv_delete(place, expect))?? {
            Some(deleted) => Ok(KvDeleted { deleted }),
            None => Err(self.conflict(delete.workspace.as_deref(), key, delete.expected_version)),
        }
    }

    pub(super) fn kv_list(&self, list: vigilo_sdk::host::KvList) -> Result<KvKeys, Refusal> {
        let workspace_id = self.kv_scope(list.workspace.as_deref())?;
        let limit = i64::from(list.limit.unwrap_or(100));
        if !(1..=1_000).contains(&limit) {
            return Err(Refusal::Asked("limit is 1 to 1000".into()));
        }
        let name = self.plugin_name();
        let keys = self.wait(self.store.kv_keys(
            &name,
            workspace_id,
            &list.prefix,
            list.after.as_deref(),
            limit,
        ))??;
        let next_after = (keys.len() as i64 == limit)
            .then(|| keys.last().cloned())
            .flatten();
        Ok(KvKeys { keys, next_after })
    }
}
