//! Templates WhatsApp refused for a fault of their own (`whatsapp::errors::is_template_fault`),
//! remembered per tenant, name and language until a hold ends: the sender does not call Meta
//! with such a template again meanwhile (one useless call per message, and refusals that can
//! hurt the number's standing), and tries it again after, so a template fixed at Meta works
//! again by itself. The tenant replacing its strategies clears the records of the templates
//! they name.
//!
//! One item per template and language, `T#<t>#TEMPLATES` / `REFUSED#<language>#<name>`, with a
//! `ttl`. Concurrent senders: the latest refusal wins (`refused_ms`), the same one written twice
//! changes nothing, and a refusal of a call made before a clear (`cleared_ms`) is not written
//! over it.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{from_item, keys, RepoError, Store, KIND};
use crate::domain::{Language, TenantId};
use crate::ports::table::{Condition, TableError, TTL};

/// How long a cleared record stays to turn away the refusals of calls made before it: longer
/// than any provider call (the sender's lease is 5 minutes).
pub const CLEARED_KEPT: SignedDuration = SignedDuration::from_mins(10);

const KIND_REFUSAL: &str = "template_refusal";
const REFUSED_MS: &str = "refused_ms";
const CLEARED_MS: &str = "cleared_ms";

/// That Meta refused a tenant's template in a language, when, why, and until when it is not
/// tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRefusal {
    pub tenant: TenantId,
    pub template: String,
    pub language: Language,
    /// Meta's error code (`132000`, `132001`, `132015` …).
    pub code: i64,
    pub reason: String,
    /// When the refused call was made: a refusal of a call made before the record was
    /// cleared is not recorded over the clear.
    pub tried_at: Timestamp,
    pub refused_at: Timestamp,
    /// The template is not tried again before this.
    pub until: Timestamp,
}

impl Store {
    /// Remembers a refusal until `r.until`. `Ok(false)`: not written, because the record
    /// holds this refusal or a later one already, or was cleared after the refused call was
    /// made (the tenant changed its strategies meanwhile).
    pub async fn record_template_refusal(&self, r: &TemplateRefusal) -> Result<bool, RepoError> {
        let key = keys::template_refusal(&r.tenant, r.language.as_str(), &r.template);
        let mut item = super::to_item(key, KIND_REFUSAL, r);
        item.insert(REFUSED_MS.into(), r.refused_at.as_millisecond().into());
        item.insert(TTL.into(), ttl(r.until).into());
        let newer = Condition::Or(vec![
            Condition::NotExists,
            Condition::lt(REFUSED_MS, r.refused_at.as_millisecond()),
            Condition::lt(CLEARED_MS, r.tried_at.as_millisecond()),
        ]);
        match self.table.put(item, Some(newer)).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The refusal that holds the template back at `now`, if one does (none once its hold
    /// ended, even before the table deletes the item).
    pub async fn template_refusal(
        &self,
        t: &TenantId,
        template: &str,
        language: Language,
        now: Timestamp,
    ) -> Result<Option<TemplateRefusal>, RepoError> {
        let key = keys::template_refusal(t, language.as_str(), template);
        let Some(item) = self.table.get(&key).await? else {
            return Ok(None);
        };
        if !item.contains_key(REFUSED_MS) {
            // Cleared.
            return Ok(None);
        }
        let refusal: TemplateRefusal = from_item(item)?;
        Ok((refusal.until > now).then_some(refusal))
    }

    /// Clears the records of these templates (name per language): each is tried at its next
    /// message. Idempotent; a refusal of a call made before `now` is not recorded after it.
    pub async fn clear_template_refusals(
        &self,
        t: &TenantId,
        templates: &[(Language, String)],
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let expires = ttl(now.saturating_add(CLEARED_KEPT).expect("in range"));
        for (language, name) in templates {
            let mut item = keys::template_refusal(t, language.as_str(), name).into_item();
            item.insert(KIND.into(), KIND_REFUSAL.into());
            item.insert(CLEARED_MS.into(), now.as_millisecond().into());
            item.insert("cleared_at".into(), now.to_string().into());
            item.insert(TTL.into(), expires.into());
            self.table.put(item, None).await?;
        }
        Ok(())
    }
}

/// The `ttl` of an item that matters until `until` (epoch seconds, rounded up).
fn ttl(until: Timestamp) -> i64 {
    let secs = until.as_second();
    if until.subsec_nanosecond() > 0 {
        secs + 1
    } else {
        secs
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::adapters::sqlite::SqliteStore;
    use std::sync::Arc;

    fn refusal(t: &TenantId, refused_at: Timestamp, code: i64) -> TemplateRefusal {
        TemplateRefusal {
            tenant: t.clone(),
            template: "recordatorio#mora".into(),
            language: Language::Es,
            code,
            reason: "Template is paused".into(),
            tried_at: refused_at - SignedDuration::from_millis(300),
            refused_at,
            until: refused_at + SignedDuration::from_hours(1),
        }
    }

    #[tokio::test]
    async fn a_refusal_holds_its_template_until_it_ends_and_the_latest_wins() {
        let store = Store::new(Arc::new(SqliteStore::open_in_memory().unwrap().table()));
        let t = TenantId::parse("t").unwrap();
        let u = TenantId::parse("u").unwrap();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let at = |secs: i64| now + SignedDuration::from_secs(secs);
        let first = refusal(&t, now, 132015);
        assert!(store.record_template_refusal(&first).await.unwrap());
        assert!(
            !store.record_template_refusal(&first).await.unwrap(),
            "the same refusal twice changes nothing"
        );
        let name = "recordatorio#mora";
        assert_eq!(
            store
                .template_refusal(&t, name, Language::Es, at(60))
                .await
                .unwrap(),
            Some(first.clone())
        );
        // Per tenant and per language.
        for (tenant, lang) in [(&u, Language::Es), (&t, Language::Pt)] {
            assert_eq!(
                store
                    .template_refusal(tenant, name, lang, at(60))
                    .await
                    .unwrap(),
                None
            );
        }
        // An older refusal (a slower sender) does not shorten a later one's hold.
        let later = refusal(&t, at(30), 132016);
        assert!(store.record_template_refusal(&later).await.unwrap());
        assert!(!store.record_template_refusal(&first).await.unwrap());
        let held = store
            .template_refusal(&t, name, Language::Es, at(3600))
            .await
            .unwrap()
            .expect("held until the later refusal's hold ends");
        assert_eq!(held.code, 132016);
        // Over once the hold ends, even if the item is still there.
        assert_eq!(
            store
                .template_refusal(&t, name, Language::Es, at(3630))
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_clear_frees_the_template_and_turns_away_refusals_of_calls_made_before_it() {
        let store = Store::new(Arc::new(SqliteStore::open_in_memory().unwrap().table()));
        let t = TenantId::parse("t").unwrap();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let at = |secs: i64| now + SignedDuration::from_secs(secs);
        let name = "recordatorio#mora";
        assert!(store
            .record_template_refusal(&refusal(&t, now, 132001))
            .await
            .unwrap());
        let named = [(Language::Es, name.to_string())];
        store
            .clear_template_refusals(&t, &named, at(10))
            .await
            .unwrap();
        store
            .clear_template_refusals(&t, &named, at(10))
            .await
            .unwrap();
        assert_eq!(
            store
                .template_refusal(&t, name, Language::Es, at(11))
                .await
                .unwrap(),
            None
        );
        // A call made before the clear, refused after it: not recorded over the clear.
        let mut stale = refusal(&t, at(12), 132001);
        stale.tried_at = at(9);
        assert!(!store.record_template_refusal(&stale).await.unwrap());
        // A call made after it is.
        let fresh = refusal(&t, at(20), 132001);
        assert!(store.record_template_refusal(&fresh).await.unwrap());
        assert_eq!(
            store
                .template_refusal(&t, name, Language::Es, at(21))
                .await
                .unwrap(),
            Some(fresh)
        );
    }
}
